"""What `fit` does at each step: the gradient clipping it is asked for, and the learning rate each
epoch trains with under StepLR, cosine and plateau schedules (compared with closed forms, not
with another run, so an off-by-one in when the schedule steps cannot cancel out)."""

import math

import numpy as np
import pytest

from striate import models, nn, optim
from striate.cli import main
from striate.data import DataLoader
from striate.data import transforms as T
from striate.train import fit, read_checkpoint

PRE = T.Compose([T.ToFloat(), T.Normalize(0.13, 0.31)])


class RecordingSGD(optim.SGD):
    """Plain SGD that records, at every step, the lr it uses and how far it moves the
    parameters (the joint 2-norm of the change)."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.lrs, self.moves = [], []

    def step(self):
        params = [p for group in self.param_groups for p in group["params"]]
        before = [p.data.astype(np.float64) for p in params]
        self.lrs.append(self.param_groups[0]["lr"])
        super().step()
        self.moves.append(math.sqrt(sum(float(np.sum((p.data - b) ** 2))
                                        for p, b in zip(params, before, strict=True))))


def conv_net(seed=0):
    nn.init.set_seed(seed)
    model = nn.Sequential(nn.Conv2D(4, 3, activation="relu"), nn.MaxPool2D(2), nn.Flatten(),
                          nn.Dense(10))
    return model.build((14, 14, 1))


def digit_loader(digits, batch_size=40):
    x, y, _, _ = digits
    return DataLoader(x, y, batch_size, shuffle=True, seed=0, transform=PRE)


# ----- clip_norm ------------------------------------------------------------------------------

@pytest.mark.parametrize("clip", [1e-3, 0.05])
def test_clip_norm_bounds_every_step_of_plain_sgd(digits, clip):
    lr = 0.5
    model = conv_net()
    opt = RecordingSGD(model.parameters(), lr=lr)
    fit(model, opt, digit_loader(digits), epochs=2, clip_norm=clip, progress=False)
    moves = np.array(opt.moves)
    assert len(moves) == 8  # 160 digits in batches of 40, two epochs
    # Each step moves by lr * ||clipped g|| = lr * clip * total / (total + 1e-6) <= lr * clip.
    assert moves.max() <= lr * clip * (1 + 1e-4), moves / (lr * clip)
    # The gradients are far larger than the clip, so every step is clipped to (almost) the bound.
    np.testing.assert_allclose(moves, lr * clip, rtol=1e-3)


def test_without_clip_norm_steps_are_not_bounded(digits):
    """The check above is not vacuous: unclipped steps are much longer than lr * 0.05."""
    model = conv_net()
    opt = RecordingSGD(model.parameters(), lr=0.5)
    fit(model, opt, digit_loader(digits), epochs=1, progress=False)
    assert min(opt.moves) > 4 * 0.5 * 0.05, opt.moves


def _joint_distance(a: dict, b: dict) -> float:
    return math.sqrt(sum(float(np.sum((a[k].astype(np.float64) - b[k]) ** 2)) for k in a))


def test_cli_clip_norm_reaches_fit(tmp_path):
    """`striate train --clip-norm` clips: with Nesterov SGD (momentum 0.9, the CLI's) step t
    moves by lr * ||g_t + 0.9 v_t|| <= lr * clip * (1 + 0.9 * (1 - 0.9^t) / 0.1)."""
    lr, clip = 0.05, 1e-4

    def train(out, *extra):
        code = main(["train", "lenet5_modern", "--limit", "64", "--epochs", "1",
                     "--batch-size", "32", "--optimizer", "sgd", "--lr", str(lr),
                     "--schedule", "none", "--no-augment", "--val-fraction", "0.5",
                     "--seed", "3", "--no-progress", "--out", str(out), *extra])
        assert code == 0
        return read_checkpoint(out / "last.safetensors")

    nn.init.set_seed(3)  # the CLI seeds the initialisation with --seed
    initial = models.create("lenet5_modern", num_classes=10).build((28, 28, 1)).state_dict()
    clipped = train(tmp_path / "clipped", "--clip-norm", str(clip))
    assert clipped.metadata["train_config"]["clip_norm"] == clip
    steps = 1  # 32 training digits (half of 64 held out), batches of 32
    bound = lr * clip * sum(1 + 0.9 * (1 - 0.9 ** t) / 0.1 for t in range(1, steps + 1))
    moved = _joint_distance(clipped.state, initial)
    assert 0.5 * bound < moved <= bound * (1 + 1e-3), (moved, bound)
    free = train(tmp_path / "free")
    assert _joint_distance(free.state, initial) > 100 * bound


# ----- the learning rate of each epoch --------------------------------------------------------

def _lr_run(digits, make_schedule, epochs, loader=None, model=None):
    """The lr of every optimizer step, grouped by epoch, and the history's lr column."""
    model = model or conv_net()
    opt = RecordingSGD(model.parameters(), lr=0.1)
    loader = loader or digit_loader(digits, batch_size=80)  # two steps per epoch
    history = fit(model, opt, loader, epochs=epochs, scheduler=make_schedule(opt),
                  progress=False)
    per_epoch = np.array(opt.lrs).reshape(epochs, -1)
    assert (per_epoch == per_epoch[:, :1]).all(), per_epoch  # constant within an epoch
    return per_epoch[:, 0], np.array(history["lr"])


def test_step_lr_of_each_epoch(digits):
    used, logged = _lr_run(digits, lambda opt: optim.StepLR(opt, step_size=2, gamma=0.5), 6)
    want = [0.1 * 0.5 ** (e // 2) for e in range(6)]  # lr_e = base * gamma^floor(e / step)
    np.testing.assert_allclose(used, want, rtol=1e-12)
    np.testing.assert_allclose(logged, want, rtol=1e-12)


def test_cosine_lr_of_each_epoch(digits):
    used, logged = _lr_run(digits, lambda opt: optim.CosineAnnealingLR(opt, T_max=5), 5)
    want = [0.1 * (1 + math.cos(math.pi * e / 5)) / 2 for e in range(5)]
    np.testing.assert_allclose(used, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(logged, want, rtol=1e-12, atol=1e-15)
    assert used[0] == 0.1 and used[-1] < used[-2]


def test_plateau_lr_of_each_epoch():
    """A metric that never improves after the first epoch: with patience 1 the lr drops by the
    factor after epochs 2, 4, 6, ... (the first epoch sets the best, the next two are bad)."""
    nn.init.set_seed(0)
    model = nn.Sequential(nn.Dense(2)).build((3,))
    model[0].bias.data[:] = [100.0, 0.0]  # every example is class 0: train accuracy stays 1.0
    x = np.ones((8, 3), np.float32)
    loader = DataLoader(x, np.zeros(8, np.int64), 4)
    used, logged = _lr_run(None, lambda opt: optim.ReduceLROnPlateau(opt, factor=0.1,
                                                                     patience=1), 7,
                           loader=loader, model=model)
    want = [0.1 * 0.1 ** max(0, (e - 1) // 2) for e in range(7)]
    np.testing.assert_allclose(used, want, rtol=1e-12)
    np.testing.assert_allclose(logged, want, rtol=1e-12)


class RecordingPlateau(optim.ReduceLROnPlateau):
    """A plateau schedule that records every metric fit gives it."""

    def __init__(self, optimizer):
        super().__init__(optimizer, patience=0)
        self.metrics = []

    def step(self, metric):
        self.metrics.append(metric)
        super().step(metric)


@pytest.mark.parametrize("with_validation", [True, False], ids=["val", "train-only"])
def test_plateau_watches_the_validation_accuracy(digits, with_validation):
    """ReduceLROnPlateau is stepped once per epoch with val/accuracy, or train/accuracy when
    there is no validation loader."""
    x, y, tx, ty = digits
    model = conv_net()
    opt = optim.SGD(model.parameters(), lr=0.05)
    schedule = RecordingPlateau(opt)
    val = DataLoader(tx, ty[::-1].copy(), 40, transform=PRE) if with_validation else None
    history = fit(model, opt, digit_loader(digits), val, epochs=3, scheduler=schedule,
                  progress=False)
    key = "val/accuracy" if with_validation else "train/accuracy"
    assert schedule.metrics == history[key]
    if with_validation:  # the validation labels are reversed: the two accuracies differ
        assert history["val/accuracy"] != history["train/accuracy"]
