"""Every file striate reads is loaded strictly: a missing, an unexpected or a mis-shaped tensor
is an error naming the keys (the first few, then a count), for `striate.load`, the checkpoint's
model builder, `restore_training_state`, `load_torch_state_dict` and `import_torch_file`.
`strict=False` is the Python API's explicit way to load a subset, and never forgives a shape.
"""

import numpy as np
import pytest
import torch

import striate
from striate import models, nn, optim
from striate.interop import export_torch_state_dict, import_torch_file, load_torch_state_dict
from striate.train import TrainState, read_checkpoint, restore_training_state
from striate.train.checkpoint import save_training_state, write_checkpoint

LENET = {"model": {"name": "lenet5_modern", "num_classes": 10}, "input_shape": [28, 28, 1]}


def lenet(seed=0):
    nn.init.set_seed(seed)
    return models.create("lenet5_modern").build((28, 28, 1))


def _write(tmp_path, state, name="c.safetensors"):
    return write_checkpoint(tmp_path / name, state, LENET)


def _loaders():
    """The two ways to rebuild a model from a checkpoint file, strict by default."""
    return {
        "striate.load": lambda path, **kw: striate.load(path, **kw),
        "build_model": lambda path, **kw: read_checkpoint(path).build_model(**kw),
    }


LOADERS = sorted(_loaders())


# ----- striate.load and Checkpoint.build_model ---------------------------------------------

@pytest.mark.parametrize("loader", LOADERS)
def test_checkpoint_with_a_missing_tensor_is_an_error(loader, tmp_path):
    state = lenet().state_dict()
    del state["fc2.bias"]
    path = _write(tmp_path, state)
    with pytest.raises(ValueError, match=r"c\.safetensors': its tensors do not fit the model "
                                         r"\(load_state_dict \(LeNet5\w*\): missing keys: "
                                         r"fc2\.bias\)$"):
        _loaders()[loader](path)


@pytest.mark.parametrize("loader", LOADERS)
def test_checkpoint_with_an_extra_tensor_is_an_error(loader, tmp_path):
    state = lenet().state_dict()
    state["fc4.weight"] = np.zeros((3, 3), np.float32)
    path = _write(tmp_path, state)
    with pytest.raises(ValueError, match=r"its tensors do not fit the model .*unexpected keys: "
                                         r"fc4\.weight\)$"):
        _loaders()[loader](path)


@pytest.mark.parametrize("loader", LOADERS)
def test_checkpoint_with_a_mis_shaped_tensor_is_an_error(loader, tmp_path):
    state = lenet().state_dict()
    state["fc1.bias"] = np.zeros(7, np.float32)
    path = _write(tmp_path, state)
    shape = lenet().state_dict()["fc1.bias"].shape
    with pytest.raises(ValueError, match=rf"its tensors do not fit the model .*fc1\.bias: "
                                         rf"checkpoint has shape \(7,\), model has "
                                         rf"\({shape[0]},\)\)$"):
        _loaders()[loader](path)
    with pytest.raises(ValueError, match=r"fc1\.bias: checkpoint has shape \(7,\)"):
        _loaders()[loader](path, strict=False)  # a shape is never forgiven


@pytest.mark.parametrize("loader", LOADERS)
def test_many_missing_keys_are_named_a_few_then_counted(loader, tmp_path):
    state = {"conv1.weight": lenet().state_dict()["conv1.weight"]}
    path = _write(tmp_path, state)
    with pytest.raises(ValueError, match=r"missing keys: conv1\.bias, conv2\.weight, "
                                         r"conv2\.bias and 6 more\)$"):
        _loaders()[loader](path)


@pytest.mark.parametrize("loader", LOADERS)
def test_strict_false_loads_a_subset_explicitly(loader, tmp_path):
    saved = lenet(seed=1).state_dict()
    initial = lenet(seed=0).state_dict()
    state = dict(saved)
    del state["fc3.weight"]
    state["extra.weight"] = np.ones(2, np.float32)
    path = _write(tmp_path, state)
    nn.init.set_seed(0)  # the rebuilt model's initial weights are lenet(seed=0)'s
    model = _loaders()[loader](path, strict=False)
    got = model.state_dict()
    np.testing.assert_array_equal(got["fc3.weight"], initial["fc3.weight"])
    for key in saved.keys() - {"fc3.weight"}:
        np.testing.assert_array_equal(got[key], saved[key], err_msg=key)


def test_load_state_dict_counts_mis_shaped_keys_beyond_three():
    model = lenet()
    state = {k: np.zeros((1, *v.shape), v.dtype) for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"\(LeNet5Modern\): conv1\.weight: checkpoint has "
                                         r"shape \(1, 5, 5, 1, 6\), model has \(5, 5, 1, 6\); "
                                         r"conv1\.bias: .*; conv2\.weight: checkpoint has shape "
                                         r"\(1, 5, 5, 6, 16\), model has \(5, 5, 6, 16\) and 7 "
                                         r"more mis-shaped keys$"):
        model.load_state_dict(state)


# ----- restore_training_state ----------------------------------------------------------------

def _dropout_net(seed=0):
    nn.init.set_seed(seed)
    return nn.Sequential(nn.Dense(5), nn.Dropout(0.5, seed=3), nn.Dense(2)).build((4,))


def _training_file(tmp_path):
    """A last.safetensors of a model with dropout after one Adam step (moments saved)."""
    model = _dropout_net()
    opt = optim.Adam(model.parameters(), lr=0.1)
    x = striate.Tensor(np.ones((3, 4), np.float32))
    striate.F.cross_entropy(model(x), np.array([0, 1, 0])).backward()
    opt.step()
    path = tmp_path / "last.safetensors"
    save_training_state(path, TrainState(model, opt, None, epoch=1), {})
    return path


def _rewrite(path, state=None, resume_arrays=None, resume_meta=None):
    checkpoint = read_checkpoint(path)
    metadata = dict(checkpoint.metadata)
    if resume_meta is not None:
        metadata["resume"] = resume_meta(metadata["resume"])
    write_checkpoint(path, state(checkpoint.state) if state else checkpoint.state,
                     metadata,
                     resume_arrays(checkpoint.resume) if resume_arrays else checkpoint.resume)
    return path


def _resume(path, strict=True):
    model = _dropout_net(seed=5)
    opt = optim.Adam(model.parameters(), lr=0.1)
    return restore_training_state(path, model, opt, strict=strict), model, opt


def _drop(key):
    return lambda d: {k: v for k, v in d.items() if k != key}


def _add(key, value):
    return lambda d: {**d, key: value}


def test_resume_round_trip_restores_everything(tmp_path):
    path = _training_file(tmp_path)
    (start, _), model, opt = _resume(path)
    saved = read_checkpoint(path)
    assert start == 1
    for key, value in saved.state.items():
        np.testing.assert_array_equal(model.state_dict()[key], value, err_msg=key)
    assert model[1].rng_state() == saved.metadata["resume"]["rng"]["1"]
    np.testing.assert_array_equal(opt.state_dict()["state"][0]["exp_avg"],
                                  saved.resume["optimizer.state.0.exp_avg"])


@pytest.mark.parametrize("case, change, message", [
    ("missing model tensor", dict(state=_drop("2.bias")), r"missing keys: 2\.bias"),
    ("extra model tensor", dict(state=_add("3.bias", np.zeros(2, np.float32))),
     r"unexpected keys: 3\.bias"),
    ("mis-shaped model tensor", dict(state=_add("2.bias", np.zeros(3, np.float32))),
     r"2\.bias: checkpoint has shape \(3,\), model has \(2,\)"),
    ("missing optimizer tensor", dict(resume_arrays=_drop("optimizer.state.1.exp_avg_sq")),
     r"missing optimizer tensors: resume:optimizer\.state\.1\.exp_avg_sq"),
    ("extra optimizer tensor", dict(resume_arrays=_add("optimizer.state.9.x", np.zeros(1))),
     r"unexpected optimizer tensors: resume:optimizer\.state\.9\.x"),
    ("mis-shaped optimizer tensor",
     dict(resume_arrays=_add("optimizer.state.1.exp_avg", np.zeros(4, np.float32))),
     r"resume:optimizer\.state\.1\.exp_avg has shape \(4,\), its parameter \(5,\)"),
    ("missing random state",
     dict(resume_meta=lambda r: {**r, "rng": {}}), r"no saved random state for layers 1"),
    ("extra random state",
     dict(resume_meta=lambda r: {**r, "rng": {**r["rng"], "7": r["rng"]["1"]}}),
     r"saved random states for layers the model lacks: 7"),
])
def test_resume_from_a_state_that_does_not_fit_is_an_error(case, change, message, tmp_path):
    path = _rewrite(_training_file(tmp_path), **change)
    with pytest.raises(ValueError, match=rf"cannot resume from '.*last\.safetensors': its "
                                         rf"training state does not fit this model and "
                                         rf"optimizer \(.*{message}.*\)$"):
        _resume(path)


def test_resume_with_strict_false_keeps_what_the_file_lacks(tmp_path):
    path = _rewrite(_training_file(tmp_path), state=_drop("2.bias"),
                    resume_meta=lambda r: {**r, "rng": {"7": r["rng"]["1"]}},
                    resume_arrays=_add("optimizer.state.9.x", np.zeros(1)))
    before = _dropout_net(seed=5)
    (start, _), model, _ = _resume(path, strict=False)
    np.testing.assert_array_equal(model.state_dict()["2.bias"], before.state_dict()["2.bias"])
    np.testing.assert_array_equal(model.state_dict()["0.weight"],
                                  read_checkpoint(path).state["0.weight"])
    assert model[1].rng_state() == before[1].rng_state()
    # The optimizer's state is positional: a missing moment is an error even when not strict.
    path = _rewrite(path, resume_arrays=_drop("optimizer.state.0.exp_avg"))
    with pytest.raises(ValueError, match=r"missing optimizer tensors: "
                                         r"resume:optimizer\.state\.0\.exp_avg"):
        _resume(path, strict=False)


# ----- torch state_dicts ------------------------------------------------------------------

def _torch_state():
    return {k: torch.from_numpy(v) for k, v in export_torch_state_dict(lenet(1)).items()}


@pytest.mark.parametrize("via_file", [False, True], ids=["state_dict", "file"])
@pytest.mark.parametrize("case, change, message", [
    ("missing", _drop("fc3.bias"), r"missing keys: fc3\.bias$"),
    ("extra", _add("fc4.bias", torch.zeros(2)), r"unexpected keys: fc4\.bias$"),
    ("mis-shaped", _add("fc3.bias", torch.zeros(4)),
     r"fc3\.bias: state_dict has shape \(4,\), the model expects \(10,\)$"),
    ("many missing", lambda d: {"conv1.weight": d["conv1.weight"]},
     r"missing keys: conv1\.bias, conv2\.weight, conv2\.bias and 6 more$"),
])
def test_torch_import_that_does_not_fit_is_an_error(via_file, case, change, message, tmp_path):
    state = change(_torch_state())
    with pytest.raises(ValueError, match=rf"load_torch_state_dict \(LeNet5\w*\): {message}"):
        if via_file:
            torch.save(state, tmp_path / "w.pth")
            import_torch_file(tmp_path / "w.pth", "lenet5_modern")
        else:
            load_torch_state_dict(lenet(), state)


def test_torch_file_import_strict_false_loads_a_subset(tmp_path):
    state = _drop("fc3.bias")(_torch_state())
    torch.save(state, tmp_path / "w.pth")
    nn.init.set_seed(0)
    model = import_torch_file(tmp_path / "w.pth", "lenet5_modern", strict=False)
    np.testing.assert_array_equal(model.state_dict()["fc3.bias"], lenet(0).state_dict()["fc3.bias"])
    np.testing.assert_array_equal(model.state_dict()["fc1.weight"],
                                  lenet(1).state_dict()["fc1.weight"])


def test_torch_import_strict_false_loads_a_subset():
    state = _drop("fc3.bias")(_torch_state())
    state["fc4.bias"] = torch.zeros(2)
    model = lenet(0)
    before = model.state_dict()["fc3.bias"]
    load_torch_state_dict(model, state, strict=False)
    np.testing.assert_array_equal(model.state_dict()["fc3.bias"], before)
    np.testing.assert_array_equal(model.state_dict()["fc2.bias"], lenet(1).state_dict()["fc2.bias"])
    state["fc3.bias"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"fc3\.bias: state_dict has shape \(3,\)"):
        load_torch_state_dict(model, state, strict=False)


def test_command_line_refuses_a_checkpoint_with_a_missing_tensor(tmp_path, capsys):
    """The command line has no strict=False: `striate evaluate` names the key and exits 2."""
    from striate.cli import main

    state = lenet().state_dict()
    del state["conv2.bias"]
    path = _write(tmp_path, state)
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert err[-1].startswith("striate evaluate: checkpoint '") and \
        "missing keys: conv2.bias" in err[-1], err[-1]
