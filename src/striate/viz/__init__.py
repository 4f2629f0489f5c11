"""Pictures of what convolutions do and what networks learn: arithmetic explained, kernel
effects, 1-D smoothing, filters and feature maps, saliency and Grad-CAM, activation
maximisation, adversarial and fooling images, receptive fields.

Drawing needs the `viz` extra (matplotlib and Pillow); the numbers do not.
"""

from .attack import AttackReport, attack_report, fgsm, fooling_images, pgd
from .explain import LECTURE_1D, LECTURE_2D, ConvExplanation, explain_conv, receptive_field_plot
from .features import (
    LayerWindow,
    capture,
    conv_filters,
    feature_levels,
    feature_maps,
    model_receptive_fields,
)
from .kernels import EdgeDetectorCost, edge_detector_cost, kernel_bank, kernel_effects, load_sample
from .saliency import grad_cam, maximize_activation, saliency_map
from .series import smooth_series

__all__ = [
    "LECTURE_1D",
    "LECTURE_2D",
    "AttackReport",
    "ConvExplanation",
    "EdgeDetectorCost",
    "LayerWindow",
    "attack_report",
    "capture",
    "conv_filters",
    "edge_detector_cost",
    "explain_conv",
    "feature_levels",
    "feature_maps",
    "fgsm",
    "fooling_images",
    "grad_cam",
    "kernel_bank",
    "kernel_effects",
    "load_sample",
    "maximize_activation",
    "model_receptive_fields",
    "pgd",
    "receptive_field_plot",
    "saliency_map",
    "smooth_series",
]
