"""The inference copy of a model: batch norms folded into the convolutions, weights cast once for bf16 CPUs."""

from __future__ import annotations

import copy
import logging

import torch
from torch.fx.experimental.optimization import fuse

from dogclf.runtime import Runtime

log = logging.getLogger(__name__)


def inference_model(model: torch.nn.Module, runtime: Runtime) -> torch.nn.Module:
    """An eval-mode copy of `model` for serving and prediction; the artifact's own model is left as it is.

    Batch norms are folded into the convolutions before them (in fp32, so nothing is lost to rounding), and
    for bf16 on a CPU the weights are cast once here rather than by autocast on every forward pass.
    """
    try:
        model = fuse(model.eval(), inplace=False)
    except Exception as exc:  # a model fx cannot trace still serves, just unfolded
        log.info("batch norms not folded (%s: %s); serving the model as it is", type(exc).__name__, exc)
        model = copy.deepcopy(model).eval()
    if runtime.device.type == "cpu" and runtime.autocast_dtype == torch.bfloat16:
        model = model.to(torch.bfloat16)
    return model
