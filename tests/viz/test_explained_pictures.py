"""Pictures that explain themselves: colour bars with what the colours mean, titles that name
the class and the layer, and 1x1 maps drawn as a labelled bar chart (LeNet-5's C5)."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from striate import models
from striate.data import load_sample
from striate.viz.features import conv_filters, feature_levels, feature_maps
from striate.viz.saliency import grad_cam, saliency_map


@pytest.fixture
def drawn(monkeypatch):
    """The figures written by savefig (still written)."""
    figures = []
    savefig = Figure.savefig

    def record(self, *args, **kwargs):
        figures.append(self)
        return savefig(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return figures


def _texts(fig):
    titles = [ax.get_title(loc) for ax in fig.axes for loc in ("left", "center")]
    labels = [ax.get_ylabel() for ax in fig.axes] + [ax.get_xlabel() for ax in fig.axes]
    return [t for t in titles + labels + [fig._suptitle.get_text() if fig._suptitle else ""]
            if t]


@pytest.fixture(scope="module")
def lenet():
    return models.create("lenet5").build((32, 32, 1))


def test_one_by_one_maps_are_a_bar_chart(lenet, drawn, tmp_path):
    digit = np.pad(load_sample("test")[0][0], 2)
    feature_maps(lenet, digit, ["c1", "c5"], path=tmp_path / "maps.png")
    (fig,) = drawn
    texts = _texts(fig)
    assert "c5: 120 channels of 1x1 maps, one bar each" in texts
    assert "channel" in texts and texts.count("activation") >= 2  # the bars' axis, a colour bar
    bars = [ax for ax in fig.axes if ax.containers]
    assert len(bars) == 1 and len(bars[0].containers[0]) == 120
    assert any("colour: the layer's output value" in t for t in texts)


def test_feature_levels_have_a_colour_bar_per_row(lenet, drawn, tmp_path):
    digit = np.pad(load_sample("test")[0][0], 2)
    feature_levels(lenet, digit, path=tmp_path / "levels.png")
    (fig,) = drawn
    assert [ax.get_ylabel() for ax in fig.axes].count("activation") >= 2


def test_filters_have_one_scale_and_a_colour_bar(lenet, drawn, tmp_path):
    conv_filters(lenet, "c1", path=tmp_path / "filters.png")
    (fig,) = drawn
    texts = _texts(fig)
    assert any(t.startswith("weight (red positive, blue negative") for t in texts)
    limits = {im.get_clim() for ax in fig.axes for im in ax.get_images()}
    assert len(limits) == 1  # every panel on the colour bar's scale


def test_saliency_and_grad_cam_say_what_they_show(lenet, drawn, tmp_path):
    digit = np.pad(load_sample("test")[0][0], 2)
    saliency_map(lenet, digit, target=7, path=tmp_path / "s.png")
    grad_cam(lenet, digit, target=7, layer="c3", path=tmp_path / "g.png")
    saliency, cam = drawn
    assert "saliency: which pixels move the score of class 7" in _texts(saliency)
    assert "|gradient of the class score| (1 = the largest)" in _texts(saliency)
    assert "Grad-CAM: class 7, layer 'c3'" in _texts(cam)
    assert "importance for class 7 (1 = the most)" in _texts(cam)
