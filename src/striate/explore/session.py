"""What the explore page shows, computed by striate's public API: one `Explorer` per model.

The explorer holds a model (from a checkpoint or the zoo), its input conventions and the
layer graph of one traced forward pass, and answers the page's questions as plain JSON-ready
dicts: the prediction and every layer's feature maps for an input, the arithmetic of one output
value, saliency and Grad-CAM, the first layer's filters, adversarial images, and the
output-size formula. The HTTP server (`server.py`) only routes requests to these methods.

Inputs are images: a drawing, an upload or a bundled sample, as PNG/JPEG/... bytes decoded in
memory, prepared exactly as `striate predict` prepares an image file (the same function,
`data.images.prepare_image`), then the checkpoint's preprocessing. A model without recorded
conventions (a zoo model) gets `data.images.default_conventions` for its input shape.
Models whose input is not an image (AlphaGo's 48 feature planes,
TextCNN's token ids) get a seeded random input instead.

Arrays go to the page as base64 uint8 planes scaled per channel (`planes`), which the page
paints on canvases; every float the page prints is sent as a float.
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from .. import arith
from ..analysis import layer_macs, trace
from ..analysis.receptive_field import layer_window, propagate
from ..nn.module import Parameter
from ..tensor import Tensor, no_grad
from .arithmetic import arithmetic_kind, output_arithmetic
from .payload import (
    b64,
    check_image_bytes,
    decode_data_url,
    image_payload,
    pillow,
    planes,
)

__all__ = ["Explorer", "small_input_shape"]

MAX_MAP_CHANNELS = 512  # channels sent for one enlarged layer
_CACHED_INPUTS = 6  # recent inputs whose activations are kept for the arithmetic panel...
_CACHE_BYTES = 512 * 2**20  # ...as long as they fit in this (the newest two always kept)


def small_input_shape(model, candidates: Sequence[int] = (28, 32, 48, 64, 96, 128, 160)):
    """The smallest square input (from candidates) that the model accepts, keeping its channels;
    its default input shape when none does or when the input is not an image (H, W, C).

    >>> from striate import models
    >>> small_input_shape(models.create("resnet18"))
    (28, 28, 3)
    """
    default = tuple(getattr(model, "default_input_shape", None) or ())
    if len(default) != 3:
        return default or None
    for size in candidates:
        if size >= default[0]:
            break
        try:
            model.build((size, size, default[2]))
            return (size, size, default[2])
        except (ValueError, TypeError):
            continue
    return default


# ----- the explorer -----------------------------------------------------------------------------
class Explorer:
    """A model and what the explore page asks of it.

    model: a striate Module; metadata: a checkpoint's metadata (input_shape, image_shape,
    preprocessing, class_names, dataset), empty for a zoo model; input_shape: the model's
    input (H, W, C) without the batch axis, by default the checkpoint's or the model's own.
    Methods return JSON-ready dicts and raise ValueError with one sentence for a bad request.
    One lock serialises the model's use: requests arrive on several threads.
    """

    def __init__(self, model, metadata: dict | None = None, input_shape=None,
                 title: str | None = None):
        self.model = model
        self.metadata = dict(metadata or {})
        config = getattr(model, "config", None) or {}
        self.name = config.get("name", type(model).__name__)
        self.title = title or self.name
        shape = input_shape or self.metadata.get("input_shape") or \
            getattr(model, "input_shape", None) or getattr(model, "default_input_shape", None)
        if shape is None:
            raise ValueError(f"model {self.name} has no input shape; give input_shape")
        self.input_shape = tuple(int(s) for s in shape)
        if self.is_image:
            # a zoo model or a checkpoint saved without them: striate's default conventions
            from ..data.images import default_conventions

            for key, value in default_conventions(self.input_shape).items():
                self.metadata.setdefault(key, value)
        self.lock = threading.RLock()
        self.version = 0  # bumped when the weights change (live training)
        self._inputs: OrderedDict[str, dict] = OrderedDict()
        with self.lock:
            self.model.eval()
            self._describe()  # its traced forward pass also builds lazy layers

    # ----- the model ------------------------------------------------------------------------
    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3 and self.input_shape[2] in (1, 3)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The images the model was trained on, before preprocessing (H, W, C)."""
        return tuple(self.metadata.get("image_shape") or self.input_shape)

    @property
    def mnist_style(self) -> bool:
        """Pictures are read as one handwritten digit (MNIST's conventions)."""
        from ..data.images import image_preparation

        return self.is_image and image_preparation(self.metadata).get("style") == "digit"

    def _class_names(self, count: int) -> list[str]:
        names = self.metadata.get("class_names")
        if isinstance(names, list) and len(names) == count:
            return [str(n) for n in names]
        return [str(i) for i in range(count)]

    def _describe(self) -> None:
        """Trace one forward pass: the layers in execution order, their inputs (the graph with
        its branches), output shapes, parameters, multiply-adds and receptive fields, by the
        functions `analysis.summary` uses (`trace`, `layer_macs`, `propagate`).

        Layers are the leaf modules, plus the blocks whose output no leaf makes: a residual
        block's relu(bn2(conv2(x)) + shortcut), an Inception module's concatenation. Such a
        block is a `block` layer whose inputs are the layers that feed its sum or
        concatenation; the layers after it read the block."""
        traced = trace(self.model, self.input_shape, record_graph=True)
        field_of = propagate(traced)
        calls = [c for c in traced.calls if isinstance(c.output, Tensor) and c.path
                 and c.inputs and isinstance(c.inputs[0], Tensor)]
        producer = {id(x): "input" for x in traced.inputs}
        leaf_outputs = {id(c.output) for c in calls if c.is_leaf}
        kept = [c for c in calls if c.is_leaf or id(c.output) not in leaf_outputs]
        repeats: dict[str, int] = {}
        for call in kept:
            repeats[call.path] = repeats.get(call.path, 0) + 1
        seen: dict[str, int] = {}
        self.layers, self.modules = [], {}
        self.total_params, self.total_macs = self.model.num_parameters(), 0
        for call in kept:
            if not call.is_leaf and id(call.output) in producer:
                continue  # a block that returns a layer's output (a Sequential)
            seen[call.path] = seen.get(call.path, 0) + 1
            key = call.path if repeats[call.path] == 1 else f"{call.path}#{seen[call.path]}"
            sources = []
            for x in call.inputs if call.is_leaf else (call.output,):
                if isinstance(x, Tensor):
                    for s in _producers(x, producer, skip=id(call.output)):
                        if s not in sources:
                            sources.append(s)
            producer[id(call.output)] = key
            x_shape, y_shape = call.inputs[0].shape, call.output.shape
            macs = layer_macs(call.module, x_shape, y_shape) if call.is_leaf else 0
            self.total_macs += macs
            field = field_of(call.output)
            window = layer_window(call.module, x_shape, y_shape) if call.is_leaf else None
            self.modules[key] = call.module
            self.layers.append({
                "key": key, "path": call.path,
                "type": type(call.module).__name__ + ("" if call.is_leaf else " output"),
                # a block is listed with its own layers, after them
                "group": call.path if not call.is_leaf else
                call.path.rsplit(".", 1)[0] if "." in call.path else "",
                "block": not call.is_leaf, "sources": sources,
                "input_shape": list(x_shape[1:]), "output_shape": list(y_shape[1:]),
                "params": call.module.num_parameters() if call.is_leaf else 0,
                "macs": macs,
                "receptive_field": None if field is None else list(field.size),
                "jump": None if field is None else list(field.jump),
                "kernel": list(window.kernel) if window is not None and window.exact else None,
                "stride": list(window.stride) if window is not None and window.exact else None,
                "arithmetic": call.is_leaf and arithmetic_kind(call.module) is not None
                and call.output.ndim in (3, 4),
            })
        out = traced.output
        self.num_classes = int(out.shape[-1]) if isinstance(out, Tensor) and out.ndim == 2 else 0
        self.class_names = self._class_names(self.num_classes)
        self.conv_layers = [layer["key"] for layer in self.layers
                            if arithmetic_kind(self.modules[layer["key"]]) == "conv"
                            and "#" not in layer["key"] and not layer["block"]]

    def describe(self) -> dict:
        """GET /api/model: the model, its input conventions and the layer graph."""
        return {
            "name": self.name, "title": self.title, "input_shape": list(self.input_shape),
            "image_shape": list(self.image_shape), "is_image": self.is_image,
            "mnist_style": self.mnist_style, "class_names": self.class_names,
            "num_classes": self.num_classes, "total_params": self.total_params,
            "total_macs": self.total_macs, "layers": self.layers,
            "conv_layers": self.conv_layers, "version": self.version,
            "checkpoint": self.metadata.get("checkpoint"),
        }

    def update_weights(self, state_dict: dict) -> None:
        """New weights (live training): load them, forget the cached activations."""
        with self.lock:
            self.model.load_state_dict(state_dict)
            self._inputs.clear()
            self.version += 1

    # ----- inputs -----------------------------------------------------------------------------
    def _preprocess(self, images: np.ndarray) -> np.ndarray:
        """uint8 images shaped as the training images -> the model's float input, as `striate
        predict` does: the checkpoint's preprocessing, or pixels / 255 without one."""
        if "preprocessing" in self.metadata:
            from ..data.transforms import from_config

            return np.asarray(from_config(self.metadata["preprocessing"])(images), np.float32)
        x = images.astype(np.float32) / np.float32(255)
        return x[..., None] if x.ndim == 3 else x

    def prepare_image(self, data: bytes) -> tuple[np.ndarray, str | None]:
        """Image file bytes (any format, size and mode) -> (the model input (1, H, W, C), a
        note or None), decoded in memory and prepared by `striate predict`'s own function
        (`data.images.prepare_image`: a digit found, cropped and centred for digit models, a
        picture fitted to the input size otherwise), then the checkpoint's preprocessing."""
        from ..data.images import prepare_image

        if not self.is_image:
            raise ValueError(f"model {self.name} does not take images (input shape "
                             f"{self.input_shape})")
        check_image_bytes(data)
        Image = pillow()
        try:
            with Image.open(io.BytesIO(data)) as picture:
                picture.load()
                prepared = prepare_image(picture, self.metadata)
        except (OSError, SyntaxError):
            raise ValueError("the upload is not an image Pillow can read") from None
        note = None if prepared.found else (prepared.note or "no digit found")
        return self._preprocess(np.asarray(prepared.image)[None]), note

    def random_input(self, seed: int = 0) -> np.ndarray:
        """A seeded input for models that do not take images: token ids below the embedding's
        vocabulary for integer inputs, 0/1 planes otherwise."""
        rng = np.random.default_rng(seed)
        vocab = [m for m in self.model.modules() if hasattr(m, "input_dim")
                 and "Embedding" in type(m).__name__]
        if vocab:
            return rng.integers(0, int(vocab[0].input_dim), size=(1, *self.input_shape))
        return (rng.random((1, *self.input_shape)) < 0.2).astype(np.float32)

    def _store(self, x: np.ndarray) -> str:
        key = hashlib.sha1(np.ascontiguousarray(x).tobytes() + str(x.shape).encode()
                           + str(self.version).encode()).hexdigest()[:16]
        if key in self._inputs:
            self._inputs.move_to_end(key)
            return key
        record = {"x": x}
        record["logits"], record["layers"] = self._forward(x)
        self._inputs[key] = record
        arrays = {id(a): a.nbytes for r in self._inputs.values()
                  for pair in r["layers"].values() for a in pair if a is not None}
        total = sum(arrays.values())
        while len(self._inputs) > 2 and (len(self._inputs) > _CACHED_INPUTS
                                         or total > _CACHE_BYTES):
            _, old = self._inputs.popitem(last=False)
            total -= sum(arrays.pop(id(a), 0) for pair in old["layers"].values()
                         for a in pair if a is not None)
        return key

    def _record(self, input_id: str) -> dict:
        if input_id not in self._inputs:
            raise ValueError("that input is no longer cached (the weights changed or newer "
                             "inputs replaced it); send the image again")
        return self._inputs[input_id]

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, dict]:
        """Logits and (input, output) of every leaf layer call, keyed as in `layers`."""
        paths = {id(m): p for p, m in self.model.named_modules()}
        counts: dict[str, int] = {}
        multiple = {layer["path"] for layer in self.layers if "#" in layer["key"]}
        outputs: dict[str, tuple] = {}

        def hook(module, inputs, output):
            path = paths[id(module)]
            counts[path] = counts.get(path, 0) + 1
            key = f"{path}#{counts[path]}" if path in multiple else path
            first = inputs[0] if inputs else None
            outputs[key] = (first.data[0] if isinstance(first, Tensor) else None,
                            output.data[0] if isinstance(output, Tensor) else None)

        handles = [self.modules[layer["key"]].register_forward_hook(hook)
                   for layer in self.layers if "#" not in layer["key"]
                   or layer["key"].endswith("#1")]
        self.model.eval()
        try:
            with no_grad():
                out = self.model(Tensor(x))
        finally:
            for handle in handles:
                handle.remove()
        logits = out.data[0] if isinstance(out, Tensor) else np.zeros(0)
        return np.asarray(logits, dtype=np.float64), outputs

    def _logits(self, x: np.ndarray) -> np.ndarray:
        """The model's outputs for a batch, in evaluation mode, without hooks."""
        self.model.eval()
        with no_grad():
            return np.asarray(self.model(Tensor(x)).data, dtype=np.float64)

    def _input_display(self, x: np.ndarray) -> dict | None:
        """The model input back as an image in [0, 1] (the preprocessing's affine map undone
        by the range of black and white images)."""
        if not self.is_image:
            return None
        lo, hi = self._pixel_range()
        return image_payload((x[0] - lo) / np.where(hi > lo, hi - lo, 1))

    def _pixel_range(self) -> tuple[np.ndarray, np.ndarray]:
        """The model input of an all-black and an all-white image: (H, W, C) each."""
        if not hasattr(self, "_range"):
            black = np.zeros((1, *self.image_shape), np.uint8)
            if self.image_shape[2] == 1:
                black = black[..., 0]
            self._range = (self._preprocess(black)[0], self._preprocess(black + 255)[0])
        return self._range

    # ----- what the page asks ---------------------------------------------------------------
    def run(self, image: str | bytes | None = None, top_k: int = 5, limit: int = 16,
            seed: int = 0) -> dict:
        """POST /api/run: an image (data URL or bytes; None: the model's random input) ->
        input_id, the prediction (top-k with class names) and every layer's feature maps
        (up to `limit` channels each)."""
        limit = int(np.clip(limit, 1, MAX_MAP_CHANNELS))
        note = None
        if image is None or not self.is_image:
            x = self.random_input(seed)
        else:
            x, note = self.prepare_image(image if isinstance(image, bytes)
                                         else decode_data_url(image))
        with self.lock:
            input_id = self._store(x)
            record = self._record(input_id)
            maps = {key: planes(out, limit) for key, (_, out) in record["layers"].items()
                    if out is not None}
            return {"input_id": input_id, "version": self.version, "note": note,
                    "input": self._input_display(x),
                    "prediction": self._prediction(record["logits"], top_k), "maps": maps}

    def _prediction(self, logits: np.ndarray, top_k: int = 5) -> dict:
        if logits.ndim != 1 or logits.size == 0:
            return {"top": [], "note": "the model's output is not a vector of class scores"}
        z = logits - logits.max()
        p = np.exp(z) / np.exp(z).sum()
        order = np.argsort(-p, kind="stable")[:max(1, min(int(top_k), p.size))]
        return {"top": [{"index": int(i), "name": self.class_names[i], "p": float(p[i]),
                         "logit": float(logits[i])} for i in order],
                "predicted": int(order[0])}

    def maps(self, input_id: str, layer: str) -> dict:
        """POST /api/maps: every channel (up to MAX_MAP_CHANNELS) of one layer's output."""
        with self.lock:
            record = self._record(input_id)
            if layer not in record["layers"]:
                raise ValueError(f"no layer {layer!r}")
            return {"layer": layer, "maps": planes(record["layers"][layer][1],
                                                    MAX_MAP_CHANNELS)}

    def arithmetic(self, input_id: str, layer: str, position, channel: int,
                   in_channel: int | None = None) -> dict:
        """POST /api/arithmetic: the sum behind one output value (see arithmetic.py), with the
        input plane the window slides over (channel `in_channel`, by default the first one the
        value reads)."""
        with self.lock:
            record = self._record(input_id)
            if layer not in record["layers"] or layer not in self.modules:
                raise ValueError(f"no layer {layer!r}")
            x, y = record["layers"][layer]
            if x is None or y is None:
                raise ValueError(f"layer {layer!r} has no array input and output")
            result = output_arithmetic(self.modules[layer], x, y, position, channel, layer)
            plane = in_channel if in_channel is not None and in_channel in result["channels"] \
                else result["channels"][0]
            x2 = x[None] if x.ndim == 2 else x
            result["plane_channel"] = plane
            result["plane"] = planes(x2[:, :, plane:plane + 1])
            return result

    def explain(self, input_id: str, target: int | None = None, layer: str | None = None) -> dict:
        """POST /api/explain: saliency (|d score / d input|, max over channels) and Grad-CAM for
        class `target` (the predicted class by default) at `layer` (default: Grad-CAM's)."""
        from ..viz import grad_cam, saliency_map

        with self.lock:
            record = self._record(input_id)
            if self.num_classes == 0:
                raise ValueError(f"model {self.name} does not output class scores")
            target = int(np.argmax(record["logits"])) if target is None else int(target)
            if not 0 <= target < self.num_classes:
                raise ValueError(f"class must be in [0, {self.num_classes}), got {target}")
            x = record["x"]
            if x.dtype.kind != "f":
                raise ValueError(f"model {self.name} takes integer input (token ids); it has "
                                 f"no gradient with respect to its input")
            layer = layer if layer else None
            if layer is not None and (layer not in self.modules or "#" in layer):
                raise ValueError(f"no layer {layer!r} for Grad-CAM")
            try:
                saliency = saliency_map(self.model, x, target)
                cam = grad_cam(self.model, x, target, layer=layer) if self.conv_layers else None
            finally:
                self.model.eval()
            return {"target": target, "name": self.class_names[target],
                    "layer": layer or _gradcam_default(self),
                    "saliency": planes(saliency[..., None]),
                    "gradcam": None if cam is None else planes(cam[..., None]),
                    "input": self._input_display(x)}

    def filters(self, layer: str | None = None) -> dict:
        """GET /api/filters: the kernel of the first convolution (or `layer`), one image per
        filter: RGB when it reads 3 channels (each scaled on its own), else input channel 0 on
        a signed scale (128 = 0)."""
        with self.lock:
            if not self.conv_layers:
                return {"layer": None, "note": "the model has no convolution layer"}
            layer = layer or self.conv_layers[0]
            if layer not in self.conv_layers:
                raise ValueError(f"layer {layer!r} is not a convolution")
            from .arithmetic import _conv_kernel

            k = _conv_kernel(self.modules[layer]).astype(np.float64)
            if k.ndim == 3:
                k = k[None]
            rgb = k.shape[2] == 3
            count = min(k.shape[3], MAX_MAP_CHANNELS)
            if rgb:
                f = k[..., :count].transpose(3, 0, 1, 2)  # (F, kH, kW, 3)
                lo = f.min(axis=(1, 2, 3), keepdims=True)
                hi = f.max(axis=(1, 2, 3), keepdims=True)
                data = np.rint(255 * (f - lo) / np.where(hi > lo, hi - lo, 1))
            else:
                f = k[:, :, 0, :count].transpose(2, 0, 1)[..., None]  # (F, kH, kW, 1)
                bound = float(np.abs(f).max()) or 1.0
                data = np.rint(127.5 + 127.5 * f / bound)
            return {"layer": layer, "shape": list(k.shape), "count": count, "rgb": rgb,
                    "height": k.shape[0], "width": k.shape[1], "channels": 3 if rgb else 1,
                    "data": b64(np.clip(data, 0, 255)), "version": self.version}

    def attack(self, input_id: str, eps: float, method: str = "fgsm", label: int | None = None,
               sweep: bool = False, steps: int = 10, sweep_max: float = 0.3) -> dict:
        """POST /api/attack: the input perturbed by FGSM or PGD at `eps` (in pixel units, 0..1
        of the image's range), the prediction on it, and with sweep=True the predicted class
        at 12 values of eps up to sweep_max (6 for PGD, at most 5 steps each): where the
        prediction flips."""
        from ..viz import fgsm, pgd

        if method not in ("fgsm", "pgd"):
            raise ValueError(f"method must be 'fgsm' or 'pgd', got {method!r}")
        eps = float(eps)
        if not 0 <= eps <= 1 or not math.isfinite(eps):
            raise ValueError(f"eps must be in [0, 1], got {eps}")
        with self.lock:
            record = self._record(input_id)
            x = record["x"]
            if self.num_classes == 0 or x.dtype.kind != "f" or not self.is_image:
                raise ValueError(f"model {self.name} takes no image to attack")
            label = int(np.argmax(record["logits"])) if label is None else int(label)
            lo, hi = self._pixel_range()
            scale = float(np.mean(hi - lo)) or 1.0
            value_range = (float(lo.min()), float(hi.max()))

            def attacked(e: float, steps: int = int(steps)) -> np.ndarray:
                if method == "fgsm":
                    return fgsm(self.model, x, [label], e * scale, value_range=value_range)
                return pgd(self.model, x, [label], e * scale, steps=steps,
                           value_range=value_range, seed=0)

            try:
                adv = attacked(eps)
                logits = self._logits(adv)[0]
                curve = []
                if sweep:
                    top = min(max(float(sweep_max), 0.01), 1.0)
                    if method == "fgsm":
                        # FGSM moves every pixel by +-eps along one sign pattern (or stops at
                        # the pixel range): the pattern of the largest eps serves every eps
                        epsilons = np.linspace(0, top, 13)[1:]
                        direction = np.sign(attacked(top) - x)
                        images = [np.clip(x + direction * np.float32(e * scale), *value_range)
                                  .astype(x.dtype) for e in epsilons]
                    else:  # PGD: its own run per eps, fewer of them
                        epsilons = np.linspace(0, top, 7)[1:]
                        images = [attacked(float(e), min(int(steps), 5)) for e in epsilons]
                    z = self._logits(np.concatenate(images))
                    p = np.exp(z - z.max(axis=1, keepdims=True))
                    p /= p.sum(axis=1, keepdims=True)
                    for e, zi, pi in zip(epsilons, z, p, strict=True):
                        curve.append({"eps": float(e), "predicted": int(np.argmax(zi)),
                                      "name": self.class_names[int(np.argmax(zi))],
                                      "p_label": float(pi[label])})
            finally:
                self.model.eval()
            prediction = self._prediction(logits)
            flip = next((c["eps"] for c in curve if c["predicted"] != label), None)
            return {"method": method, "eps": eps, "label": label,
                    "label_name": self.class_names[label], "image": self._input_display(adv),
                    "perturbation": planes((adv[0] - x[0]).mean(axis=-1)[..., None],
                                            symmetric=True),
                    "prediction": prediction, "flipped": prediction["predicted"] != label,
                    "sweep": curve, "flip_eps": flip}

    @staticmethod
    def output_size(size: int, kernel: int, stride: int = 1, padding="valid",
                    dilation: int = 1) -> dict:
        """GET /api/formula: O = floor((I + P_start + P_end - d(K-1) - 1)/S) + 1 for one axis,
        padding resolved by `striate.arith` ('valid', 'same', 'full', an int or 'start,end')."""
        values = {"size": size, "kernel": kernel, "stride": stride, "dilation": dilation}
        for key, value in values.items():
            if not arith._is_int(value) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if isinstance(padding, str) and padding.lower() not in ("valid", "same", "full"):
            try:
                parts = [int(p) for p in padding.split(",")]
            except ValueError:
                raise ValueError(f"padding must be valid, same, full, an int or start,end; "
                                 f"got {padding!r}") from None
            padding = parts[0] if len(parts) == 1 else [tuple(parts[:2])]
        if isinstance(padding, list):
            pass
        elif not isinstance(padding, str):
            padding = [(int(padding), int(padding))]
        ((start, end),) = arith.resolve_padding(padding, (size,), (kernel,), (stride,),
                                                (dilation,), "formula")
        span = size + start + end - arith.dilated(kernel, dilation)
        result = {"size": size, "kernel": kernel, "stride": stride, "dilation": dilation,
                  "pads": [start, end], "extent": arith.dilated(kernel, dilation),
                  "numerator": span, "output": None, "fits": None, "dropped": None}
        if span >= 0:
            out = arith.output_size(size, kernel, stride, (start, end), dilation)
            fits = arith.fits_exactly(size, kernel, stride, (start, end), dilation)
            result.update({"output": out, "fits": fits, "dropped": span % stride,
                           "starts": [o * stride - start for o in range(min(out, 64))]})
        else:
            result["error"] = (f"the {arith.dilated(kernel, dilation)}-wide kernel is larger "
                               f"than the padded input of {size + start + end}")
        return result


def _gradcam_default(explorer: Explorer) -> str | None:
    """The layer Grad-CAM picks by itself: the last convolution whose output is larger than
    1x1 (`viz.grad_cam`'s rule), for the page's label."""
    shapes = {layer["key"]: layer["output_shape"] for layer in explorer.layers}
    maps = [k for k in explorer.conv_layers
            if len(shapes[k]) == 3 and shapes[k][0] * shapes[k][1] > 1]
    return maps[-1] if maps else (explorer.conv_layers[-1] if explorer.conv_layers else None)


def _producers(tensor: Tensor, producer: dict[int, str], skip: int | None = None) -> list[str]:
    """The layers (or 'input') whose outputs reach `tensor` through operations outside any
    layer (a residual sum, a concatenation): walks the autograd graph back to them. skip: the
    id of a tensor not to stop at (a block's own output, whose inputs are wanted)."""
    found: list[str] = []
    stack, visited = [tensor], set()
    while stack:
        t = stack.pop()
        if id(t) in visited:
            continue
        visited.add(id(t))
        if id(t) in producer and id(t) != skip:
            if producer[id(t)] not in found:
                found.append(producer[id(t)])
            continue
        if isinstance(t, Parameter):
            continue
        stack.extend(p for p in reversed(t.parents) if isinstance(p, Tensor))
    return found
