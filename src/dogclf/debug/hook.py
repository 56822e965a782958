"""smdebug hook: SageMaker's from debughookconfig.json, a local one writing to runs/<name>/debug/, or none."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from torch import nn

from dogclf.debug.config import (
    CLASS_COUNTS_TENSOR,
    LABELS_TENSOR,
    PREDICTIONS_TENSOR,
    VALID_CONFUSION_TENSOR,
    DebugConfig,
)

log = logging.getLogger("dogclf")

SAGEMAKER_HOOK_CONFIG = Path("/opt/ml/input/config/debughookconfig.json")
VALID_LOSS_TENSOR = "valid_loss"  # saved as valid_loss_output_0, which the losses collection matches


def create_hook(cfg: DebugConfig, out_dir: Path, sagemaker_config: Path = SAGEMAKER_HOOK_CONFIG) -> Any | None:
    """The SageMaker hook when its JSON config exists, else a local hook when enabled, else None."""
    if not (sagemaker_config.exists() or cfg.enabled or cfg.live_rules):
        return None
    from dogclf.debug import compat

    compat.load()
    import smdebug.pytorch as smd

    hook_class = _hook_class()
    if sagemaker_config.exists():
        log.info("smdebug hook from %s", sagemaker_config)
        return hook_class.create_from_json_file(str(sagemaker_config))
    out_dir.mkdir(parents=True, exist_ok=True)
    return hook_class(
        out_dir=str(out_dir),
        export_tensorboard=False,
        save_config=smd.SaveConfig(save_interval=cfg.save_interval),
        include_collections=cfg.saved_collections(),
    )


def _hook_class() -> type:
    """The smdebug PyTorch hook, saving bf16/fp16 tensors (autocast) as float32, which numpy can hold."""
    import torch
    from smdebug.pytorch import Hook

    class DogclfHook(Hook):
        @staticmethod
        def _make_numpy_array(tensor_value):
            if isinstance(tensor_value, torch.Tensor) and tensor_value.dtype in (
                torch.bfloat16,
                torch.float16,
            ):
                tensor_value = tensor_value.float()
            return Hook._make_numpy_array(tensor_value)

    return DogclfHook


class ReluRecorder:
    """Saves each ReLU call's input and output as its own tensor (`<module>.<call>_relu_input/_relu_output`).

    torchvision ResNets call one inplace ReLU module two or three times per block, so smdebug's per-module
    names would mix call sites and its inputs would already be rectified. A pre-hook on the model resets the
    call counters; the ReLU's pre-hook copies its input before the inplace op overwrites it. Values are copied
    to numpy only at steps where the collection is saved.
    """

    def __init__(self, hook: Any, model: nn.Module) -> None:
        self.hook, self.calls = hook, {}
        self.handles = [model.register_forward_pre_hook(lambda *_: self.calls.clear())]
        for name, m in model.named_modules():
            if isinstance(m, nn.ReLU) and name:
                self.handles.append(m.register_forward_pre_hook(self._pre(name)))
                self.handles.append(m.register_forward_hook(self._post(name)))

    def _saving(self, collection: str) -> bool:
        return bool(self.hook._is_collection_being_saved_for_step(collection))

    def _pre(self, name: str):
        def pre(_module, inputs) -> None:
            call = self.calls[name] = self.calls.get(name, -1) + 1
            if self._saving("relu_input"):
                self.hook.save_tensor(f"{name}.{call}_relu_input", _numpy(inputs[0]), "relu_input")

        return pre

    def _post(self, name: str):
        def post(_module, _inputs, output) -> None:
            if self._saving("relu_output"):
                self.hook.save_tensor(f"{name}.{self.calls[name]}_relu_output", _numpy(output), "relu_output")

        return post


def _numpy(tensor: Any) -> Any:
    """A float32 numpy copy of `tensor` (bf16 under autocast has no numpy type)."""
    return tensor.detach().float().cpu().numpy().copy()


def configure(hook: Any, cfg: DebugConfig) -> None:
    """Fill dogclf's collections: losses every step, labels, predictions, class counts and valid confusion, custom."""
    import smdebug.pytorch as smd

    every_step = smd.SaveConfigMode(save_interval=1)
    hook.get_collection("losses").save_config = {smd.modes.TRAIN: every_step, smd.modes.EVAL: every_step}
    hook.get_collection("labels").include(re.escape(LABELS_TENSOR))
    hook.get_collection("predictions").include(re.escape(PREDICTIONS_TENSOR))
    dataset = hook.get_collection("dataset")
    dataset.include([re.escape(CLASS_COUNTS_TENSOR), re.escape(VALID_CONFUSION_TENSOR) + "_output_0"])
    dataset.save_config = {smd.modes.TRAIN: every_step, smd.modes.EVAL: every_step}  # custom tensors only
    for kind in ("relu_input", "relu_output"):  # ReluRecorder's names; a non-empty collection gets saved
        hook.get_collection(kind).include(rf".*\.\d+_{kind}$")
    if cfg.include_regex:
        hook.get_collection("custom").include(cfg.include_regex)


class GradientHooks:
    """Gradient hooks for parameters trainable now; frozen ones are skipped and picked up once unfrozen."""

    def __init__(self, hook: Any, model: nn.Module) -> None:
        self.hook, self.model = hook, model
        # smdebug's register_module hooks the parameters that require grad at that moment.
        self.done = {name for name, p in model.named_parameters() if p.requires_grad}

    def refresh(self) -> int:
        """Hook parameters unfrozen since the last call (staged fine-tuning); returns how many."""
        added = 0
        for name, p in self.model.named_parameters():
            if p.requires_grad and name not in self.done:
                p.register_hook(self.hook.backward_hook(f"{self.model._get_name()}_{name}"))
                self.done.add(name)
                added += 1
        return added


def attach(hook: Any, model: nn.Module, criterion: nn.Module, cfg: DebugConfig) -> GradientHooks:
    """Register the model, loss and (when saved) ReLU calls with the hook; frozen parameters get no gradient hook."""
    configure(hook, cfg)
    hook.register_module(model)
    hook.register_loss(criterion)
    if {"relu_input", "relu_output"} & {*cfg.collections, *(getattr(hook, "include_collections", None) or ())}:
        ReluRecorder(hook, model)
    return GradientHooks(hook, model)
