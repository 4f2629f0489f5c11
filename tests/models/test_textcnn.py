import numpy as np
import pytest

from striate import functional as F
from striate import models
from striate.optim import SGD


def _small(**config):
    return models.create("textcnn", num_classes=3, vocab_size=40, embed_dim=6, filters=4,
                         **config)


def test_parameter_count_and_default_input():
    model = models.create("textcnn")
    # V*D embedding + per width (w*D*filters + filters) + dense (3*filters + 1) * classes
    expected = 20000 * 300 + sum(w * 300 * 100 + 100 for w in (3, 4, 5)) + (300 + 1) * 2
    assert model.num_parameters() == expected == 6_360_902
    assert model.default_input_shape == (50,)
    assert model.build((50,)) is model


@pytest.mark.parametrize("static_channel", [False, True])
@pytest.mark.parametrize("length", [5, 17])
def test_output_shape(rng, static_channel, length):
    model = _small(static_channel=static_channel)
    y = model(rng.integers(0, 40, (2, length)))
    assert y.shape == (2, 3) and y.dtype == np.float32


def _reference(model, ids):
    """Kim's model with explicit loops: each filter over each channel, the channels' responses
    added, ReLU, max over time, concatenation, dense (eval mode: no dropout)."""
    channels = [model.embedding.weight.data[ids]]
    if "static_embedding.weight" in model.state_dict():
        channels.append(model.static_embedding.weight[ids])
    features = []
    for w in model.widths:
        conv = getattr(model, f"conv{w}")
        k, b = conv.weight.data, conv.bias.data  # (w, D, filters), (filters,)
        length = ids.shape[1] - w + 1
        c = np.zeros((ids.shape[0], length, k.shape[-1]))
        for t in range(length):
            for e in channels:
                c[:, t] += np.einsum("nwd,wdf->nf", e[:, t:t + w], k)
        features.append(np.maximum(c + b, 0).max(axis=1))
    return np.concatenate(features, axis=1) @ model.fc.weight.data + model.fc.bias.data


@pytest.mark.parametrize("static_channel", [False, True])
def test_matches_the_papers_computation(rng, static_channel):
    model = _small(static_channel=static_channel, widths=(2, 3)).astype(np.float64).eval()
    if static_channel:  # make the two channels differ, as after some training
        table = model.static_embedding.weight
        table[...] = rng.standard_normal(table.shape)
    ids = rng.integers(0, 40, (3, 9))
    np.testing.assert_allclose(model(ids).data, _reference(model, ids), rtol=1e-10)


def test_static_channel_is_not_trained(rng):
    model = _small(static_channel=True)
    names = [name for name, _ in model.named_parameters()]
    assert "embedding.weight" in names
    assert not any(n.startswith("static_embedding") for n in names)
    assert "static_embedding.weight" in model.state_dict()
    assert repr(model.static_embedding) == "Embedding(40, 6, trainable=False)"
    static = model.static_embedding.weight.copy()
    np.testing.assert_array_equal(static, model.embedding.weight.data)  # both start equal
    trained = model.embedding.weight.data.copy()
    optimizer = SGD(model.parameters(), lr=0.5)
    for _ in range(2):
        optimizer.zero_grad()
        F.cross_entropy(model(rng.integers(0, 40, (4, 8))), np.array([0, 1, 2, 0])).backward()
        optimizer.step()
    np.testing.assert_array_equal(model.static_embedding.weight, static)
    assert not np.array_equal(model.embedding.weight.data, trained)


def test_every_parameter_receives_a_gradient(rng):
    model = _small(dropout=0.0)
    F.cross_entropy(model(np.arange(40).reshape(4, 10)), np.array([0, 1, 2, 1])).backward()
    for path, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and np.any(p.grad != 0), path


def test_errors():
    model = _small()
    with pytest.raises(ValueError, match=r"TextCNN: sentences of 4 words are shorter than the "
                                         r"widest filter \(5\)"):
        model(np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"TextCNN: expected integer ids \(N, L\), got shape"):
        model(np.zeros((2, 4, 6), dtype=np.int64))
    with pytest.raises(TypeError, match="TextCNN: ids must be integers, got dtype float64"):
        model(np.full((2, 6), 0.5))
    with pytest.raises(ValueError, match="textcnn: input_length must be >= the widest filter 5"):
        _small(input_length=3)
