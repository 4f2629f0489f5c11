import numpy as np
import pytest

from striate import nn, optim
from striate.data import DataLoader
from striate.data import transforms as T
from striate.train import (
    EarlyStopping,
    History,
    ModelCheckpoint,
    TrainingDiverged,
    evaluate,
    fit,
    read_checkpoint,
    restore_training_state,
)

PRE = T.Compose([T.ToFloat(), T.Normalize(0.13, 0.31)])
AUGMENT = T.Compose([T.RandomShift(1), PRE])


def tiny_model(seed=0, dropout=0.25):
    nn.init.set_seed(seed)
    model = nn.Sequential(nn.Conv2D(4, 3, activation="relu"), nn.MaxPool2D(2), nn.Flatten(),
                          nn.Dropout(dropout), nn.Dense(10))
    return model.build((14, 14, 1))


def loaders(digits, seed=0, batch_size=32):
    x, y, tx, ty = digits
    return (DataLoader(x, y, batch_size, shuffle=True, seed=seed, transform=AUGMENT),
            DataLoader(tx, ty, 40, transform=PRE))


def run(digits, epochs, seed=0, **kwargs):
    model = tiny_model(seed)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    train, val = loaders(digits, seed)
    history = fit(model, opt, train, val, epochs=epochs, progress=False, **kwargs)
    return model, history


def test_fit_learns_and_records_history(digits):
    model, history = run(digits, epochs=10)
    assert history.epochs == 10
    assert set(history) >= {"train/loss", "train/accuracy", "val/loss", "val/accuracy",
                            "val/top5_error", "lr", "time/epoch"}
    assert history["train/loss"][-1] < 0.5 * history["train/loss"][0]
    assert history["val/accuracy"][-1] > 0.5
    result = evaluate(model, loaders(digits)[1])
    assert result["accuracy"] == pytest.approx(history["val/accuracy"][-1])
    assert result["confusion"].sum() == 80 and result["per_class_accuracy"].shape == (10,)


def test_evaluate_restores_training_mode(digits):
    model = tiny_model()
    model.train()
    evaluate(model, loaders(digits)[1])
    assert model.training


def test_one_seed_gives_identical_losses(digits):
    _, first = run(digits, epochs=2, seed=3)
    _, second = run(digits, epochs=2, seed=3)
    _, other = run(digits, epochs=2, seed=4)
    assert first["train/loss"] == second["train/loss"]
    assert first["val/loss"] == second["val/loss"]
    assert first["train/loss"] != other["train/loss"]


def test_resume_continues_exactly(digits, tmp_path):
    """4 epochs straight == 2 epochs, then a fresh process state resumed to 4 (bit for bit)."""
    straight, _ = run(digits, epochs=4, seed=1)

    model = tiny_model(seed=1)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    train, val = loaders(digits, seed=1)
    fit(model, opt, train, val, epochs=2, progress=False,
        callbacks=[ModelCheckpoint(tmp_path / "a")])
    resumed = tiny_model(seed=99)  # other initial weights and dropout state: resume resets them
    opt = optim.Adam(resumed.parameters(), lr=1e-2)
    start, history = restore_training_state(tmp_path / "a" / "last.safetensors", resumed, opt)
    assert start == 2 and history.epochs == 2
    train, val = loaders(digits, seed=1)
    history = fit(resumed, opt, train, val, epochs=4, progress=False, start_epoch=start,
                  history=history)
    assert history.epochs == 4
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(),
                                 strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_resume_with_sgd_and_schedule(digits, tmp_path):
    def make(seed):
        model = tiny_model(seed)
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        return model, opt, optim.CosineAnnealingLR(opt, T_max=4)

    model, opt, sched = make(2)
    train, val = loaders(digits, seed=2)
    fit(model, opt, train, val, epochs=4, scheduler=sched, progress=False)
    half, opt2, sched2 = make(2)
    train, val = loaders(digits, seed=2)
    fit(half, opt2, train, val, epochs=2, scheduler=sched2, progress=False,
        callbacks=[ModelCheckpoint(tmp_path)])
    resumed, opt3, sched3 = make(50)
    start, history = restore_training_state(tmp_path / "last.safetensors", resumed, opt3, sched3)
    train, val = loaders(digits, seed=2)
    fit(resumed, opt3, train, val, epochs=4, scheduler=sched3, progress=False,
        start_epoch=start, history=history)
    for name, a in model.state_dict().items():
        np.testing.assert_array_equal(a, resumed.state_dict()[name], err_msg=name)
    assert opt3.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_model_checkpoint_keeps_best_and_last(digits, tmp_path):
    model, history = run(digits, epochs=3, callbacks=[ModelCheckpoint(tmp_path, {"note": "x"})])
    best = read_checkpoint(tmp_path / "best.safetensors")
    last = read_checkpoint(tmp_path / "last.safetensors")
    assert best.metadata["note"] == "x" and "resume" not in best.metadata
    assert best.metadata["metrics"]["val/accuracy"] == max(history["val/accuracy"])
    assert last.metadata["resume"]["epoch"] == 3 and last.resume  # optimizer moments
    for name, a in model.state_dict().items():
        np.testing.assert_array_equal(a, last.state[name])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the forced overflow
def test_nan_loss_stops_with_clear_error_and_keeps_checkpoint(digits, tmp_path):
    model = tiny_model()
    opt = optim.SGD(model.parameters(), lr=1.0)
    train, val = loaders(digits)
    callback = ModelCheckpoint(tmp_path)
    fit(model, opt, train, val, epochs=1, progress=False, callbacks=[callback])
    kept = (tmp_path / "last.safetensors").read_bytes()
    opt.param_groups[0]["lr"] = 1e30  # forces the weights, then the loss, to overflow
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf) at epoch 2, batch \d+; "
                                               r"the last good checkpoint is kept at .*"
                                               r"last.safetensors; lower the learning rate"):
        fit(model, opt, train, val, epochs=3, start_epoch=1, progress=False,
            callbacks=[callback], history=History())
    assert (tmp_path / "last.safetensors").read_bytes() == kept


def test_early_stopping_stops_after_patience():
    stopper = EarlyStopping(monitor="val/accuracy", patience=2)

    class State:
        history, stop = History(), False

    state = State()
    stopper.on_train_begin(state)
    for epoch, value in enumerate([0.5, 0.6, 0.6, 0.59]):
        stopper.on_epoch_end(epoch, {"val/accuracy": value}, state)
    assert state.stop
    with pytest.raises(ValueError, match="patience must be an int >= 1"):
        EarlyStopping(patience=0)


def test_fit_stops_early(digits):
    _, history = run(digits, epochs=10, callbacks=[EarlyStopping("val/loss", 1, mode="min",
                                                                 min_delta=10.0)])
    assert history.epochs == 2


def test_fit_rejects_bad_epochs(digits):
    with pytest.raises(ValueError, match="fit: epochs must be an int >= 0"):
        run(digits, epochs=-1)


def test_lenet5_overfits_32_digits():
    from striate import models
    from striate.data import load_sample

    x, y = load_sample("train")
    pre = T.Compose([T.ToFloat(), T.Pad(2), T.Normalize(0.13, 0.31)])
    nn.init.set_seed(0)
    model = models.create("lenet5").build((32, 32, 1))
    opt = optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(x[:32], y[:32], 32, shuffle=True, seed=0, transform=pre)
    history = fit(model, opt, loader, epochs=60, progress=False)
    assert history["train/loss"][-1] < 0.05
    assert evaluate(model, DataLoader(x[:32], y[:32], 32, transform=pre))["accuracy"] == 1.0
