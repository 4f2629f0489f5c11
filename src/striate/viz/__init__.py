"""Pictures of what convolutions do: arithmetic explained, kernel effects, 1-D smoothing.

Drawing needs the `viz` extra (matplotlib and Pillow); the numbers do not.
"""

from .explain import LECTURE_1D, LECTURE_2D, ConvExplanation, explain_conv, receptive_field_plot
from .kernels import EdgeDetectorCost, edge_detector_cost, kernel_bank, kernel_effects, load_sample
from .series import smooth_series

__all__ = [
    "LECTURE_1D",
    "LECTURE_2D",
    "ConvExplanation",
    "EdgeDetectorCost",
    "edge_detector_cost",
    "explain_conv",
    "kernel_bank",
    "kernel_effects",
    "load_sample",
    "receptive_field_plot",
    "smooth_series",
]
