"""Registered architectures: torchvision classifiers plus a tiny CNN for tests and smoke runs."""

from __future__ import annotations

import torchvision
from torch import nn

from dogclf.models._registry import register_model

_TORCHVISION = {
    "resnet18": "fc",
    "resnet34": "fc",
    "resnet50": "fc",
    "resnet101": "fc",
    "resnet152": "fc",
    "efficientnet_b0": "classifier.1",
    "efficientnet_b1": "classifier.1",
    "efficientnet_b2": "classifier.1",
    "efficientnet_b3": "classifier.1",
    "efficientnet_v2_s": "classifier.1",
    "convnext_tiny": "classifier.2",
    "convnext_small": "classifier.2",
    "mobilenet_v3_large": "classifier.3",
    "regnet_y_800mf": "fc",
    "vit_b_16": "heads.head",
}


def _register_torchvision(name: str, head: str) -> None:
    register_model(name, head, imagenet_weights=lambda: torchvision.models.get_model_weights(name).DEFAULT)(
        lambda: torchvision.models.get_model(name, weights=None)
    )


for _name, _head in _TORCHVISION.items():
    _register_torchvision(_name, _head)


@register_model("tiny_cnn", head="fc")
def tiny_cnn() -> nn.Module:
    """Three conv-BN-ReLU blocks and a linear head: seconds per epoch on a CPU, for tests."""

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    model = nn.Sequential()
    model.add_module("features", nn.Sequential(block(3, 16), block(16, 32), block(32, 64)))
    model.add_module("pool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    model.add_module("fc", nn.Linear(64, 1000))
    return model
