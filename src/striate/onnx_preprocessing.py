"""A checkpoint's preprocessing inside its ONNX graph, so that the graph takes raw images.

`add_preprocessing(proto, metadata)` takes the graph `export_onnx` wrote (input "input":
float32 (N, H, W, C), the model's input) and puts in front of it what the checkpoint records
as its "preprocessing" (`striate.data.transforms` configs): ToFloat (Cast, / 255, a channel
axis for grey images), Pad (constant) and Normalize ((x - mean) / std per channel). The new
input, also named "input", is the raw uint8 image as the training images were stored:
(N, H, W) for grey images, (N, H, W, C) otherwise. The graph's metadata (`metadata_props`,
which Netron and `onnx.load(...).metadata_props` show) says what the input is, the steps it
contains, the class names and how to turn a photo into such an image; for the main job's
LeNet-5, "striate.input" reads "uint8 (N, 28, 28): grey images as stored for training
(0..255), channels last; MNIST's convention: ...".
"""

from __future__ import annotations

import json

import numpy as np

__all__ = ["add_preprocessing"]

_DIGIT_NOTE = (
    "MNIST's convention: light ink on black, the digit scaled into a 20x20 box and centred by "
    "its centre of mass in 28x28; for a photo of a digit run "
    "striate.data.images.prepare_image(photo, metadata) (what `striate predict` does) first"
)


def _steps(config: dict) -> list[dict]:
    if config.get("name") == "Compose":
        return [s for c in config.get("transforms", []) for s in _steps(c)]
    return [config]


def add_preprocessing(proto, metadata: dict):
    """Prepend the checkpoint's preprocessing to an exported graph (in place; returned).

    metadata: the checkpoint's metadata, with "preprocessing" and "image_shape". Raises
    NotImplementedError for a transform with no ONNX translation (anything but ToFloat, Pad
    with a constant and Normalize) and ValueError when there is no preprocessing to add.
    """
    from onnx import TensorProto, helper, numpy_helper

    config = metadata.get("preprocessing")
    shape = metadata.get("image_shape")
    if not isinstance(config, dict) or not shape:
        raise ValueError("the checkpoint records no preprocessing and image size to put in "
                         "the graph")
    h, w, c = (int(n) for n in shape)
    graph = proto.graph
    (model_input,) = [i for i in graph.input if i.name == "input"]
    for node in graph.node:  # the model now reads "model_input"
        for j, name in enumerate(node.input):
            if name == "input":
                node.input[j] = "model_input"
    nodes, inits = [], []

    def const(name, value, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    x = "input"
    described = []
    grey = c == 1
    for i, step in enumerate(_steps(config)):
        name = step.get("name")
        if name == "ToFloat":
            nodes.append(helper.make_node("Cast", [x], [f"pre{i}_float"],
                                          to=TensorProto.FLOAT))
            nodes.append(helper.make_node("Div", [f"pre{i}_float", const(f"pre{i}_255", 255.0)],
                                          [f"pre{i}_scaled"]))
            x = f"pre{i}_scaled"
            if grey:
                nodes.append(helper.make_node("Unsqueeze", [x, const(f"pre{i}_axis", [3],
                                                                     np.int64)],
                                              [f"pre{i}_nhwc"]))
                x = f"pre{i}_nhwc"
            described.append("x / 255")
        elif name == "Pad" and step.get("mode", "constant") == "constant":
            (top, bottom), (left, right) = step["padding"]
            pads = [0, top, left, 0, 0, bottom, right, 0]
            nodes.append(helper.make_node(
                "Pad", [x, const(f"pre{i}_pads", pads, np.int64),
                        const(f"pre{i}_fill", float(step.get("fill", 0)))], [f"pre{i}_padded"]))
            x = f"pre{i}_padded"
            described.append(f"zero padding (top, bottom, left, right) = "
                             f"({top}, {bottom}, {left}, {right})")
        elif name == "Normalize":
            mean, std = step["mean"], step["std"]
            nodes.append(helper.make_node("Sub", [x, const(f"pre{i}_mean", mean)],
                                          [f"pre{i}_centred"]))
            nodes.append(helper.make_node("Div", [f"pre{i}_centred", const(f"pre{i}_std", std)],
                                          [f"pre{i}_normalised"]))
            x = f"pre{i}_normalised"
            described.append(f"(x - mean) / std with mean {mean} and std {std}")
        else:
            raise NotImplementedError(f"the checkpoint's preprocessing step {name} has no ONNX "
                                      f"translation; export with --no-preprocessing and apply "
                                      f"it yourself")
    nodes.append(helper.make_node("Identity", [x], ["model_input"]))
    model_nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + model_nodes)  # the graph stays in topological order
    graph.initializer.extend(inits)
    raw_shape = ["N", h, w] if grey else ["N", h, w, c]
    graph.input.remove(model_input)
    graph.input.insert(0, helper.make_tensor_value_info("input", TensorProto.UINT8, raw_shape))
    layout = f"(N, {h}, {w})" if grey else f"(N, {h}, {w}, {c})"
    kind = "grey images" if grey else "RGB images" if c == 3 else f"{c}-channel images"
    how = metadata.get("image_preparation") or {}
    note = _DIGIT_NOTE if how.get("style") == "digit" else \
        f"a picture of another size is fitted by {how.get('fit', 'resizing')} (see " \
        f"striate.data.images.prepare_image)"
    props = {
        "striate.input": f"uint8 {layout}: {kind} as stored for training (0..255), channels "
                         f"last; {note}",
        "striate.preprocessing": "inside this graph, in order: " + "; ".join(described),
        "striate.preprocessing_config": json.dumps(config),
        "striate.image_preparation": json.dumps(how),
        "striate.output": "float32 (N, classes): logits (apply softmax for probabilities)",
    }
    if metadata.get("class_names"):
        props["striate.class_names"] = json.dumps(metadata["class_names"])
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto
