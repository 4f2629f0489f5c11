import numpy as np
import pytest

from striate import models, nn
from striate.models import registry
from striate.nn import Dense

MINE = ["alexnet", "alexnet_paper", "allconv", "alphago_policy", "lenet5", "lenet5_modern",
        "textcnn", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
        "vgg19_bn", "zfnet"]


@pytest.fixture
def private_registry(monkeypatch):
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))


def test_names_are_sorted_and_include_the_classic_models():
    names = models.names()
    assert names == sorted(names)
    assert set(MINE) <= set(names)


def test_unknown_name_lists_the_available_models():
    with pytest.raises(ValueError, match=r"unknown model 'lenet6'; available: .*lenet5, "
                                         r"lenet5_modern"):
        models.create("lenet6")


def test_create_records_the_config():
    model = models.create("lenet5", input_size=28)
    assert model.config == {"name": "lenet5", "num_classes": 10, "input_size": 28}
    assert model.default_input_shape == (28, 28, 1)
    model = models.create("allconv", num_classes=100, width=8)
    assert model.config == {"name": "allconv", "num_classes": 100, "width": 8}


REBUILDS = [
    ("textcnn", dict(vocab_size=30, embed_dim=4, widths=(2, 3), filters=2, dropout=0.3,
                     static_channel=True, input_length=7)),
    ("allconv", dict(num_classes=4, width=3, dropout=0.3, input_dropout=0.1)),
    ("fractalnet", dict(num_classes=3, columns=2, blocks=2, channels=(2, 3), drop_path="global",
                        drop_rate=0.3)),
    ("alphago_policy", dict(num_classes=81, filters=2, board_size=9)),
    ("lenet5", dict(num_classes=7, input_size=32)),
]


@pytest.mark.parametrize("name, config", REBUILDS, ids=[name for name, _ in REBUILDS])
def test_config_rebuilds_the_same_model(name, config, rng):
    """The recorded config rebuilds the same function, not only the same tensor shapes: with
    one seed, the same initial values, the same logits in evaluation, and the same random
    choices (dropout, drop-path) in training."""
    nn.init.set_seed(5)
    model = models.create(name, **config)
    saved = dict(model.config)
    nn.init.set_seed(5)
    again = models.create(saved.pop("name"), **saved)
    assert again.config == model.config and repr(again) == repr(model)
    shape = model.default_input_shape
    if name == "textcnn":
        x = rng.integers(0, 30, size=(3, *shape))
    else:
        x = rng.standard_normal((3, *shape)).astype(np.float32)
    ours, theirs = model.state_dict(), again.state_dict()
    assert list(ours) == list(theirs)
    for key in ours:
        np.testing.assert_array_equal(theirs[key], ours[key], err_msg=key)
    for training in (False, True):
        model.train(training)
        again.train(training)
        np.testing.assert_array_equal(again(x).data, model(x).data, err_msg=f"{training=}")


def test_register_and_duplicates(private_registry):
    @models.register("tiny_dense")
    def tiny_dense(num_classes: int = 3):
        model = Dense(num_classes, input_dim=2)
        model.default_input_shape = (2,)
        return model

    assert "tiny_dense" in models.names()
    assert models.create("tiny_dense").config == {"name": "tiny_dense", "num_classes": 3}
    with pytest.raises(ValueError, match="register: model name 'tiny_dense' is already "
                                         "registered"):
        models.register("tiny_dense")(lambda num_classes=1: None)
