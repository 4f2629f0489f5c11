import pytest

from striate import models
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


def test_config_rebuilds_the_same_architecture():
    model = models.create("textcnn", vocab_size=30, embed_dim=4, filters=2, static_channel=True)
    config = dict(model.config)
    again = models.create(config.pop("name"), **config)
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}


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
