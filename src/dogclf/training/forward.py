"""The models the Trainer runs besides its own: a frozen backbone's training forward and the evaluation copy.

Both run the backbone as serving does (dogclf.models.folding.inference_model: batch norms folded, bf16 weights
cast once on a bf16 CPU) instead of autocasting the raw model on every pass; their logits equal the model's
within the rounding of that folding and cast.
"""

from __future__ import annotations

from functools import cache

import torch
from torch import nn

from dogclf.config import RunConfig
from dogclf.models import create_model, get_spec, set_head, static_backbone
from dogclf.models.folding import inference_model
from dogclf.runtime import Runtime


class FrozenBackboneForward(nn.Module):
    """Training forward of a model whose backbone neither learns nor changes with train mode.

    The backbone runs as a folded eval copy under inference mode (no autograd bookkeeping); the model's own
    head, shared, is the only part that records gradients, so optimizer, checkpoints and artifact see the
    model's parameters as before.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features without autograd, then the head."""
        with torch.inference_mode():
            features = self.backbone(x)
        return self.head(features.clone())  # a normal tensor again: the head saves its input for backward

    def train(self, mode: bool = True) -> FrozenBackboneForward:
        """Set the head's mode; the backbone copy stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self


def frozen_backbone_reason(model: nn.Module | None, cfg: RunConfig, distributed: bool = False) -> str | None:
    """Why training `cfg` cannot run its backbone frozen, folded and outside autograd (None when it can).

    The one decision behind the Trainer's FrozenBackboneForward and head-only tuning from cached features;
    `model` None judges the architecture alone (no hooks can watch a model not yet built).
    """
    arch = cfg.model.arch
    if cfg.model.freeze != "backbone":
        return f"model.freeze={cfg.model.freeze} trains the backbone"
    if distributed:
        return "under torchrun, DistributedDataParallel wraps the model itself"
    if model is not None and has_hooks(model):
        return "hooks (the debug hook's or a callback's) watch the model's own layers"
    if not (backbone_is_static(arch) if model is None else static_backbone(model, arch)):
        return f"{arch} has batch statistics, dropout or stochastic depth active in its backbone"
    return None


@cache
def backbone_is_static(arch: str) -> bool:
    """True when the frozen backbone of `arch` gives the same output in the trainer's train mode as in eval mode."""
    try:
        with torch.device("meta"):  # structure only: no weights allocated, no RNG consumed
            model = create_model(arch, 2, None, "backbone")
    except NotImplementedError:  # an architecture that computes its layout from tensors (regnet) needs real ones
        with torch.random.fork_rng(devices=[]):
            model = create_model(arch, 2, None, "backbone")
    return static_backbone(model, arch)


def has_hooks(model: nn.Module) -> bool:
    """Whether hooks watch `model`'s layers or gradients: a copy of the model would run without them."""
    for module in model.modules():
        if module._forward_hooks or module._forward_pre_hooks or module._backward_hooks:
            return True
        if getattr(module, "_backward_pre_hooks", None):
            return True
    return any(p._backward_hooks for p in model.parameters())


def frozen_backbone_forward(model: nn.Module, arch: str, runtime: Runtime) -> FrozenBackboneForward:
    """FrozenBackboneForward over a folded copy of `model`'s backbone and `model`'s own head."""
    return FrozenBackboneForward(folded_backbone(model, arch, runtime), model.get_submodule(get_spec(arch).head))


def folded_backbone(model: nn.Module, arch: str, runtime: Runtime) -> nn.Module:
    """An evaluation copy of `model` without its classifier: what the frozen forward and the feature cache run."""
    head_path = get_spec(arch).head
    head = model.get_submodule(head_path)
    modes = {module: module.training for module in model.modules()}
    set_head(model, head_path, nn.Identity())  # for the copy only: folding copies the model
    try:
        return evaluation_model(model, runtime)
    finally:
        set_head(model, head_path, head)
        for module, training in modes.items():
            module.training = training


def evaluation_model(model: nn.Module, runtime: Runtime) -> nn.Module:
    """An eval-mode copy of `model` as serving runs it, on the runtime's device and memory format."""
    return runtime.prepare_model(inference_model(model, runtime))
