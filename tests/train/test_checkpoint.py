import json

import numpy as np
import pytest
import safetensors.numpy

import striate
from striate import models, nn, optim
from striate.train import read_checkpoint, restore_training_state
from striate.train.checkpoint import write_checkpoint


@pytest.fixture
def lenet():
    nn.init.set_seed(0)
    return models.create("lenet5_modern").build((28, 28, 1))


def logits(model, x):
    model.eval()
    with striate.no_grad():
        return model(x).data


def test_round_trip_gives_same_logits(lenet, tmp_path, rng):
    x = rng.standard_normal((4, 28, 28, 1)).astype(np.float32)
    path = striate.save(lenet, tmp_path / "m.safetensors", class_names=list("abcdefghij"),
                        preprocessing={"name": "ToFloat"})
    loaded = striate.load(path)
    assert type(loaded) is type(lenet)
    np.testing.assert_array_equal(logits(loaded, x), logits(lenet, x))
    assert loaded.checkpoint_metadata["class_names"] == list("abcdefghij")
    assert loaded.checkpoint_metadata["model"] == {"name": "lenet5_modern", "num_classes": 10}
    assert loaded.input_shape == (28, 28, 1)


def test_file_is_plain_safetensors_with_string_metadata(lenet, tmp_path):
    path = striate.save(lenet, tmp_path / "m.safetensors", dataset={"name": "bundled"})
    arrays = safetensors.numpy.load_file(str(path))
    assert set(arrays) == set(lenet.state_dict())
    from safetensors import safe_open
    with safe_open(str(path), framework="numpy") as f:
        header = f.metadata()
    assert header["format"] == "striate" and header["format_version"] == "1"
    assert json.loads(header["dataset"]) == {"name": "bundled"}
    assert json.loads(header["input_shape"]) == [28, 28, 1]


def test_failed_write_leaves_no_file_and_keeps_the_old_one(lenet, tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        striate.save(lenet, path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    striate.save(lenet, path)
    old = path.read_bytes()
    monkeypatch.setattr(safetensors.numpy, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        striate.save(lenet, path)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_truncated_file_is_a_clear_error(lenet, tmp_path):
    path = striate.save(lenet, tmp_path / "m.safetensors")
    data = path.read_bytes()
    for cut in (len(data) - 100, 50, 4):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=r"'.*m.safetensors' is not a readable striate "
                                             r"checkpoint: truncated"):
            striate.load(path)


def test_garbage_and_foreign_files_are_rejected(tmp_path):
    garbage = tmp_path / "g.safetensors"
    garbage.write_bytes(b"\x00hello, this is not a checkpoint" * 10)
    with pytest.raises(ValueError, match="g.safetensors' is not a readable striate checkpoint"):
        striate.load(garbage)
    foreign = tmp_path / "f.safetensors"
    safetensors.numpy.save_file({"w": np.zeros(3, np.float32)}, str(foreign))
    with pytest.raises(ValueError, match="f.safetensors' is a safetensors file but not a "
                                         "striate checkpoint"):
        striate.load(foreign)
    with pytest.raises(FileNotFoundError, match="no checkpoint file '.*missing"):
        striate.load(tmp_path / "missing.safetensors")


def test_tensors_that_do_not_fit_the_model(lenet, tmp_path):
    state = lenet.state_dict()
    name = next(iter(state))
    state[name] = np.zeros((3, 3), np.float32)
    path = write_checkpoint(tmp_path / "bad.safetensors", state,
                            {"model": {"name": "lenet5_modern", "num_classes": 10},
                             "input_shape": [28, 28, 1]})
    with pytest.raises(ValueError, match=rf"bad.safetensors': its tensors do not fit the model "
                                         rf".*{name}"):
        striate.load(path)


def test_unknown_model_and_missing_config(lenet, tmp_path):
    path = write_checkpoint(tmp_path / "u.safetensors", lenet.state_dict(),
                            {"model": {"name": "no_such_net"}})
    with pytest.raises(ValueError, match="cannot rebuild its model .*unknown model 'no_such_net'"):
        striate.load(path)
    plain = nn.Sequential(nn.Dense(3)).build((4,))
    path = striate.save(plain, tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="records no model config"):
        striate.load(path)
    assert set(read_checkpoint(path).state) == {"0.weight", "0.bias"}


def test_reserved_metadata_key(lenet, tmp_path):
    with pytest.raises(ValueError, match="metadata key 'format' is reserved"):
        striate.save(lenet, tmp_path / "m.safetensors", format="other")


def test_resume_needs_a_training_state(lenet, tmp_path):
    path = striate.save(lenet, tmp_path / "best.safetensors")
    with pytest.raises(ValueError, match="holds no training state"):
        restore_training_state(path, lenet, optim.SGD(lenet.parameters(), lr=0.1))
