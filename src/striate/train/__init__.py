"""Training: the `fit` loop, evaluation metrics, callbacks and checkpoint files."""

from .callbacks import EarlyStopping, ModelCheckpoint
from .checkpoint import (
    Checkpoint,
    load,
    read_checkpoint,
    restore_training_state,
    save,
    save_training_state,
)
from .fit import History, TrainingDiverged, TrainState, evaluate, fit, predict_logits
from .metrics import accuracy, confusion_matrix, per_class_accuracy, top_k_error

__all__ = [
    "Checkpoint",
    "EarlyStopping",
    "History",
    "ModelCheckpoint",
    "TrainState",
    "TrainingDiverged",
    "accuracy",
    "confusion_matrix",
    "evaluate",
    "fit",
    "load",
    "per_class_accuracy",
    "predict_logits",
    "read_checkpoint",
    "restore_training_state",
    "save",
    "save_training_state",
    "top_k_error",
]
