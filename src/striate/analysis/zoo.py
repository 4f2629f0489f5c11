"""The model zoo at a glance: each registered model's native input, parameter count and family,
for `striate models`.

Counting parameters means building a model (VGG-16's 138 million weights drawn at random, a
forward pass at 224x224 to infer the channels: seconds per model, minutes for the zoo), so the
counts are recorded here, measured by building each model at its default number of classes and
native input. A model that is registered but not recorded here is built when listed.
tests/analysis/test_zoo.py checks the table against the registry and rebuilds the small models.
"""

from __future__ import annotations

# name: (native input (H, W, C) or (L,), parameters at the default classes, classes, what it is)
ZOO: dict[str, tuple[tuple[int, ...], int, int, str]] = {
    "alexnet": ((224, 224, 3), 61_100_840, 1000, "AlexNet, torchvision's layout"),
    "alexnet_paper": ((227, 227, 3), 60_965_224, 1000, "AlexNet 2012: two groups, LRN"),
    "allconv": ((32, 32, 3), 1_369_738, 10, "All-CNN-C (2015), any input of 9x9 or more"),
    "alphago_policy": ((19, 19, 48), 3_882_793, 361, "AlphaGo's policy network"),
    "densenet121": ((224, 224, 3), 7_978_856, 1000, "DenseNet-121"),
    "efficientnet_b0": ((224, 224, 3), 5_288_548, 1000, "EfficientNet-B0"),
    "fractalnet": ((32, 32, 3), 33_724_618, 10, "FractalNet for CIFAR"),
    "googlenet": ((224, 224, 3), 6_624_904, 1000, "GoogLeNet, torchvision's layout"),
    "inception_v1": ((224, 224, 3), 6_998_552, 1000, "Inception v1, the paper's table"),
    "lenet5": ((32, 32, 1), 60_850, 10, "LeNet-5 1998 (28x28 digits padded to 32x32)"),
    "lenet5_modern": ((28, 28, 1), 61_706, 10, "LeNet-5 with ReLU and max pooling"),
    "mobilenet_v2": ((224, 224, 3), 3_504_872, 1000, "MobileNetV2"),
    "nf_resnet50": ((224, 224, 3), 25_557_032, 1000, "NF-ResNet-50, no batch norm"),
    "regnet_x_400mf": ((224, 224, 3), 5_495_976, 1000, "RegNetX-400MF"),
    "regnet_y_400mf": ((224, 224, 3), 4_344_144, 1000, "RegNetY-400MF"),
    "resnet101": ((224, 224, 3), 44_549_160, 1000, "ResNet-101"),
    "resnet152": ((224, 224, 3), 60_192_808, 1000, "ResNet-152"),
    "resnet18": ((224, 224, 3), 11_689_512, 1000, "ResNet-18"),
    "resnet34": ((224, 224, 3), 21_797_672, 1000, "ResNet-34"),
    "resnet50": ((224, 224, 3), 25_557_032, 1000, "ResNet-50"),
    "se_resnet50": ((224, 224, 3), 28_088_024, 1000, "SE-ResNet-50"),
    "squeezenet1_0": ((224, 224, 3), 1_248_424, 1000, "SqueezeNet 1.0"),
    "squeezenet1_1": ((224, 224, 3), 1_235_496, 1000, "SqueezeNet 1.1"),
    "textcnn": ((50,), 6_360_902, 2, "Kim 2014 text CNN (token ids)"),
    "vgg11": ((224, 224, 3), 132_863_336, 1000, "VGG-11"),
    "vgg11_bn": ((224, 224, 3), 132_868_840, 1000, "VGG-11 with batch norm"),
    "vgg13": ((224, 224, 3), 133_047_848, 1000, "VGG-13"),
    "vgg13_bn": ((224, 224, 3), 133_053_736, 1000, "VGG-13 with batch norm"),
    "vgg16": ((224, 224, 3), 138_357_544, 1000, "VGG-16"),
    "vgg16_bn": ((224, 224, 3), 138_365_992, 1000, "VGG-16 with batch norm"),
    "vgg19": ((224, 224, 3), 143_667_240, 1000, "VGG-19"),
    "vgg19_bn": ((224, 224, 3), 143_678_248, 1000, "VGG-19 with batch norm"),
    "zfnet": ((224, 224, 3), 62_357_608, 1000, "ZFNet 2013"),
}


def measure(name: str) -> tuple[tuple[int, ...], int, int, str]:
    """Build a registered model at its native input and count its parameters (slow for big
    models): the ZOO entry it would have."""
    from .. import models

    model = models.create(name)
    shape = tuple(getattr(model, "default_input_shape", None) or ())
    if shape:
        model.build(shape)
    params = sum(int(p.data.size) for p in model.parameters())
    return shape, params, int(model.config.get("num_classes") or 0), ""


def zoo_rows() -> list[dict]:
    """One row per registered model: name, input, params, classes, about."""
    from .. import models

    rows = []
    for name in models.names():
        shape, params, classes, about = ZOO.get(name) or measure(name)
        rows.append({"name": name, "input": list(shape), "params": params, "classes": classes,
                     "about": about})
    return rows
