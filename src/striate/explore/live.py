"""Live training in the explore page: a `fit` callback that serves the page while a model trains.

`LiveExplore(metadata)` in `fit(..., callbacks=[...])` (what `striate train --explore` adds):

- on_train_begin starts the server on a copy of the model (the page's requests never touch the
  model being trained: no hooks, no mode changes on it, no race with the optimizer);
- after every training batch an event {"type": "batch", "epoch", "batch", "batches", "loss",
  "accuracy"} goes to the page by server-sent events (loss and accuracy of that batch, from the
  logits the training forward pass produced: the model's forward hook reads them, the loader
  wrapper gives the labels);
- after every epoch the copy takes the current weights and an {"type": "epoch", "logs"} event
  tells the page to redraw its feature maps and filters;
- on_train_end sends {"type": "end"} and the page keeps the final state while the process lives.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

from .server import EventLog, ExploreServer
from .session import Explorer

__all__ = ["LiveExplore"]


class _Labelled:
    """The training loader, remembering the labels of the batch it handed out last."""

    def __init__(self, loader, owner: LiveExplore):
        self._loader, self._owner = loader, owner

    def __iter__(self):
        for batch, (x, y) in enumerate(self._loader):
            self._owner._labels, self._owner._batch = np.asarray(y), batch
            yield x, y

    def __len__(self):
        return len(self._loader)

    def __getattr__(self, name):
        return getattr(self._loader, name)


def _copy(model):
    """A second model with the same weights, for the page to use: rebuilt from its registry
    config (a zoo model), else a deep copy."""
    import copy

    from .. import models

    config = dict(getattr(model, "config", None) or {})
    if config.get("name") in models.names():
        return models.create(config.pop("name"), **config)
    return copy.deepcopy(model)


class LiveExplore:
    """A `fit` callback serving the explore page during training (see the module docstring).

    metadata: what a checkpoint of the run records (input_shape, image_shape, preprocessing,
    class_names, dataset), so the page prepares drawings as `striate predict` would;
    host, port: where to serve (port 0: a free one); stream: where to print the address.
    """

    def __init__(self, metadata: dict | None = None, host: str = "127.0.0.1", port: int = 0,
                 stream=None):
        self.metadata = dict(metadata or {})
        self.host, self.port = host, port
        self.stream = stream if stream is not None else sys.stderr
        self.events = EventLog()
        self.server: ExploreServer | None = None
        self._labels, self._batch, self._epoch = None, 0, 0
        self._batches = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str | None:
        return None if self.server is None else self.server.url

    def on_train_begin(self, state) -> None:
        shape = self.metadata.get("input_shape") or \
            getattr(state.model, "input_shape", None) or \
            getattr(state.model, "default_input_shape", None)
        if shape is None:
            raise ValueError("LiveExplore: give metadata={'input_shape': (H, W, C)}; the model "
                             "has no default_input_shape")
        copy = _copy(state.model)
        copy.build(tuple(shape))
        copy.load_state_dict(state.model.state_dict())
        name = (getattr(copy, "config", None) or {}).get("name", type(copy).__name__)
        explorer = Explorer(copy, self.metadata, tuple(shape), title=f"{name} (training)")
        if self.server is None:
            self.server = ExploreServer(explorer, self.host, self.port, self.events)
            self.server.start()
            print(f"striate explore: live training at {self.server.url}", file=self.stream,
                  flush=True)
        else:  # fit called again with the same callback
            self.server.explorer = explorer
        state.train_loader = _Labelled(state.train_loader, self)
        self._batches = len(state.train_loader)
        self._epoch = state.epoch
        self._handle = state.model.register_forward_hook(self._on_forward)
        self.events.add({"type": "begin", "epochs": state.epochs, "epoch": state.epoch,
                         "batches": self._batches})

    def _on_forward(self, module, inputs, output) -> None:
        """After each training forward pass: that batch's loss and accuracy from its logits."""
        if not module.training or self._labels is None:
            return
        logits = np.asarray(output.data, dtype=np.float64)
        y = self._labels
        self._labels = None
        if logits.ndim != 2 or len(y) != len(logits) or y.dtype.kind not in "iu":
            return
        z = logits - logits.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = float(-log_p[np.arange(len(y)), y].mean())
        accuracy = float((logits.argmax(axis=1) == y).mean())
        self.events.add({"type": "batch", "epoch": self._epoch, "batch": self._batch,
                         "batches": self._batches, "loss": loss if np.isfinite(loss) else None,
                         "accuracy": accuracy})

    def on_epoch_end(self, epoch: int, logs: dict, state) -> None:
        self.server.explorer.update_weights(state.model.state_dict())
        self._epoch = epoch + 1
        clean = {k: (float(v) if np.isfinite(v) else None) for k, v in logs.items()}
        self.events.add({"type": "epoch", "epoch": epoch, "epochs": state.epochs, "logs": clean,
                         "version": self.server.explorer.version})

    def on_train_end(self, state) -> None:
        if getattr(self, "_handle", None) is not None:
            self._handle.remove()
            self._handle = None
        if isinstance(state.train_loader, _Labelled):
            state.train_loader = state.train_loader._loader
        self.events.add({"type": "end", "epochs": state.epochs})
        self.events.close()

    def close(self) -> None:
        """Stop the server."""
        if self.server is not None:
            self.server.stop()
            self.server = None
