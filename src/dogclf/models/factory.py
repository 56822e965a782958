"""create_model: architecture + weights + new classifier head + freeze mode."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from dogclf.errors import ModelError
from dogclf.models._registry import get_spec

# "head" and "full" are the old names of "backbone" and "nothing" (dogclf.config.FREEZE_ALIASES).
FreezeMode = Literal["backbone", "nothing", "staged", "head", "full"]


def get_head(model: nn.Module, path: str) -> nn.Linear:
    """The final linear layer at dotted `path`."""
    return model.get_submodule(path)


def set_head(model: nn.Module, path: str, module: nn.Module) -> None:
    """Put `module` where the head at dotted `path` is (nn.Identity() leaves the backbone's features)."""
    parent_path, _, attr = path.rpartition(".")
    setattr(model.get_submodule(parent_path) if parent_path else model, attr, module)


def _replace_head(model: nn.Module, path: str, num_classes: int, dropout: float) -> None:
    old = get_head(model, path)
    new: nn.Module = nn.Linear(old.in_features, num_classes)
    if dropout > 0:
        new = nn.Sequential(nn.Dropout(dropout), new)
    set_head(model, path, new)


def _imagenet_state(arch: str) -> dict[str, torch.Tensor]:
    spec = get_spec(arch)
    if spec.imagenet_weights is None:
        raise ModelError(f"architecture {arch!r} has no ImageNet weights; use --weights none or a file path")
    weights = spec.imagenet_weights()
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # network errors come in many types
        hub = torch.hub.get_dir()
        raise ModelError(
            f"ImageNet weights {weights} for {arch} are not in the torch cache ({hub}/checkpoints/) and could not "
            f"be downloaded ({type(exc).__name__}: {exc}). Copy the file there from a machine with internet "
            f"(url: {weights.url}), or pass --weights PATH or --weights none"
        ) from None


def _file_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"cannot load weights file {path} with weights_only=True: {exc}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a dogclf checkpoint
    if not isinstance(state, dict):
        raise ModelError(f"weights file {path} holds a {type(state).__name__}, not a state_dict")
    return state


def _load_backbone(model: nn.Module, state: dict[str, torch.Tensor], head: str, source: str) -> None:
    """Load all matching weights; only the classifier may differ in shape or be missing."""
    own = model.state_dict()
    head_keys = {k for k in own if k.startswith(head + ".")}
    usable = {k: v for k, v in state.items() if k in own and (k not in head_keys or v.shape == own[k].shape)}
    missing = [k for k in own if k not in usable and k not in head_keys]
    if missing:
        raise ModelError(
            f"weights {source} do not fit this architecture: {len(missing)} missing keys, e.g. {missing[:3]}"
        )
    model.load_state_dict(usable, strict=False)


def create_model(
    arch: str = "resnet50",
    num_classes: int = 133,
    weights: str | Path | None = None,
    freeze: FreezeMode = "nothing",
    dropout: float = 0.0,
) -> nn.Module:
    """Build `arch` with `num_classes` outputs; weights None | 'imagenet' | path; freeze backbone|nothing|staged."""
    spec = get_spec(arch)
    if num_classes < 1:
        raise ModelError(f"num_classes must be >= 1 (got {num_classes})")
    model = spec.build()
    if weights is not None and str(weights).lower() not in ("none", ""):
        is_imagenet = str(weights).lower() == "imagenet"
        state = _imagenet_state(arch) if is_imagenet else _file_state(Path(weights))
        _load_backbone(model, state, spec.head, "imagenet" if is_imagenet else str(weights))
    _replace_head(model, spec.head, num_classes, dropout)
    set_trainable(model, arch, backbone=freeze in ("nothing", "full"))
    return model


def head_parameters(model: nn.Module, arch: str) -> list[nn.Parameter]:
    """Parameters of the classifier head."""
    return list(model.get_submodule(get_spec(arch).head).parameters())


def backbone_parameters(model: nn.Module, arch: str) -> list[nn.Parameter]:
    """Every parameter outside the classifier head."""
    head_ids = {id(p) for p in head_parameters(model, arch)}
    return [p for p in model.parameters() if id(p) not in head_ids]


def set_trainable(model: nn.Module, arch: str, backbone: bool) -> None:
    """Head always trains; the backbone trains only when `backbone` is True."""
    for p in backbone_parameters(model, arch):
        p.requires_grad_(backbone)
    for p in head_parameters(model, arch):
        p.requires_grad_(True)


def train_mode(model: nn.Module) -> None:
    """model.train(), but BatchNorm layers whose parameters are frozen keep their running statistics."""
    model.train()
    for module in model.modules():
        if isinstance(module, _BatchNorm) and module.weight is not None and not module.weight.requires_grad:
            module.eval()


def static_backbone(model: nn.Module, arch: str) -> bool:
    """True when `model`'s backbone is frozen and gives the same output in the trainer's train mode as in eval mode.

    That is: no trainable backbone parameter, and outside the head no batch norm that updates its statistics and no
    active dropout or stochastic depth. The modules' train/eval modes are left as they were.
    """
    from torch.nn.modules.dropout import _DropoutNd
    from torchvision.ops import StochasticDepth

    modes = {module: module.training for module in model.modules()}
    train_mode(model)
    head = get_spec(arch).head
    moving = [
        name
        for name, module in model.named_modules()
        if module.training
        and not (name == head or name.startswith(head + "."))
        and (isinstance(module, _BatchNorm) or (isinstance(module, _DropoutNd | StochasticDepth) and module.p > 0))
    ]
    for module, training in modes.items():
        module.training = training
    return not moving and not any(p.requires_grad for p in backbone_parameters(model, arch))
