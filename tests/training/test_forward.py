"""The frozen-backbone training forward and the folded evaluation copy give the model's own results."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from dogclf.config import RuntimeConfig
from dogclf.data.dataset import ImageDataset, make_loader
from dogclf.data.discovery import discover
from dogclf.data.preprocess import Preprocess, eval_transform
from dogclf.evaluation import evaluate_loader
from dogclf.models import create_model, train_mode
from dogclf.runtime import cpu_supports_bf16, resolve_runtime
from dogclf.training import Callback
from dogclf.training.forward import (
    FrozenBackboneForward,
    evaluation_model,
    frozen_backbone_forward,
    frozen_backbone_reason,
)
from dogclf.training.loop import Trainer


class _OwnForward(Trainer):
    """The Trainer with the fast path switched off: the model's own forward pass trains."""

    def _fast_forward_reason(self):
        return "switched off for the comparison"


# bf16 rounds folded and unfolded weights differently: losses agree to bf16's precision, not fp32's.
PRECISIONS = ["fp32", pytest.param("bf16", marks=pytest.mark.skipif(not cpu_supports_bf16(), reason="no bf16 CPU"))]
TOLERANCE = {"fp32": 1e-5, "bf16": 2e-2}


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_frozen_backbone_training_equals_the_models_own_forward(tiny_data, tmp_path, precision, dropout):
    cfg = tiny_config(
        tiny_data, **{"model.freeze": "backbone", "model.dropout": dropout, "runtime.precision": precision}
    )
    fast, own = Trainer(cfg, tmp_path / "fast"), _OwnForward(cfg, tmp_path / "own")
    a, b = fast.fit(), own.fit()
    assert isinstance(fast.fast_forward, FrozenBackboneForward) and own.fast_forward is None
    rel = TOLERANCE[precision]
    for ra, rb in zip(a.history, b.history, strict=True):
        for phase in ("train", "valid"):
            assert ra[phase]["loss"] == pytest.approx(rb[phase]["loss"], rel=rel), (phase, ra["epoch"])
            if precision == "fp32":
                assert ra[phase]["top1"] == rb[phase]["top1"]
    assert a.test["loss"] == pytest.approx(b.test["loss"], rel=rel)
    head_a, head_b = fast.model.fc.state_dict(), own.model.fc.state_dict()
    for key in head_a:  # fc, or fc.1 behind the dropout
        torch.testing.assert_close(head_a[key], head_b[key], rtol=rel, atol=rel)


def test_frozen_forward_gives_the_models_logits_and_trains_only_the_head():
    runtime = resolve_runtime(RuntimeConfig(device="cpu", precision="fp32"))
    torch.manual_seed(0)
    model = create_model("tiny_cnn", 3, None, "backbone")
    train_mode(model)
    fast = frozen_backbone_forward(model, "tiny_cnn", runtime).train()
    x = torch.randn(4, 3, 32, 32)
    logits = fast(x)
    torch.testing.assert_close(logits, model(x), rtol=1e-5, atol=1e-5)
    assert fast.head is model.fc and not fast.backbone.training  # shared head; the copy stays in eval mode
    logits.sum().backward()
    assert model.fc.weight.grad is not None
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("fc."))


@pytest.mark.parametrize(
    ("overrides", "distributed", "reason"),
    [
        ({}, False, None),
        ({"model.freeze": "nothing"}, False, "model.freeze=nothing trains the backbone"),
        ({"model.freeze": "staged"}, False, "model.freeze=staged trains the backbone"),
        ({}, True, "under torchrun"),
        ({"model.arch": "resnet18"}, False, None),
        ({"model.arch": "efficientnet_b0"}, False, "efficientnet_b0 has batch statistics, dropout or stochastic"),
    ],
)
def test_the_fast_path_is_taken_only_for_a_static_frozen_backbone(tiny_data, overrides, distributed, reason):
    cfg = tiny_config(tiny_data, **{"model.freeze": "backbone", "optim.epochs": 2, **overrides})
    with torch.device("meta"):  # structure only
        model = create_model(cfg.model.arch, 3, None, cfg.model.freeze)
    found = frozen_backbone_reason(model, cfg, distributed)
    assert found == reason if reason is None else reason in found


def test_hooks_on_the_model_keep_it_training_itself(tiny_data):
    cfg = tiny_config(tiny_data, **{"model.freeze": "backbone"})
    model = create_model("tiny_cnn", 3, None, "backbone")
    assert frozen_backbone_reason(model, cfg, False) is None
    handle = model.features[1].register_forward_hook(lambda module, args, out: None)
    assert "hooks" in frozen_backbone_reason(model, cfg, False)
    handle.remove()
    model.fc.weight.register_hook(lambda grad: grad)
    assert "hooks" in frozen_backbone_reason(model, cfg, False)


def test_a_backbone_whose_batch_norm_updates_in_train_mode_is_not_static(tiny_data):
    cfg = tiny_config(tiny_data, **{"model.freeze": "backbone"})
    model = create_model("tiny_cnn", 3, None, "backbone")
    assert frozen_backbone_reason(model, cfg, False) is None
    model.features[0][1] = torch.nn.BatchNorm2d(16, affine=False)  # no parameters to freeze: it stays in train mode
    assert "batch statistics" in frozen_backbone_reason(model, cfg, False)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_folded_evaluation_copy_gives_the_models_metrics(tiny_data, precision):
    runtime = resolve_runtime(RuntimeConfig(device="cpu", precision=precision))
    torch.manual_seed(0)
    model = runtime.prepare_model(create_model("tiny_cnn", 3, None, "nothing"))
    model.train()
    with torch.no_grad():  # a few batches in train mode give the batch norms statistics worth folding
        for _ in range(3):
            model(runtime.to_input(torch.randn(8, 3, 32, 32)))
    layout = discover(tiny_data)
    pre = Preprocess.for_size(32)
    dataset = ImageDataset(layout.splits["test"], eval_transform(pre), pre.decode_options())
    loader = make_loader(dataset, 8, False, 0, 0)
    own = evaluate_loader(model, loader, runtime, 3)
    folded = evaluate_loader(evaluation_model(model, runtime), loader, runtime, 3)
    assert folded.loss == pytest.approx(own.loss, rel=TOLERANCE[precision])
    torch.testing.assert_close(folded.logits, own.logits, rtol=TOLERANCE[precision], atol=TOLERANCE[precision] * 10)
    if precision == "fp32":
        assert folded.confusion == own.confusion


class _ValidPasses(Callback):
    def __init__(self) -> None:
        self.valid = 0

    def on_phase_start(self, ctx, phase):
        self.valid += phase == "valid"


@pytest.mark.parametrize(
    ("freeze", "debug", "passes"),
    [
        ("backbone", False, 2),  # the final evaluation runs the frozen-backbone forward: its valid pass is reused
        ("backbone", True, 3),  # the debug hook sees the model's own final pass over valid
        ("nothing", False, 3),  # epochs validate the model itself, the final evaluation a folded copy
    ],
)
def test_the_final_evaluation_reuses_a_valid_pass_only_through_the_same_model(
    tiny_data, tmp_path, freeze, debug, passes
):
    from dogclf.training import train

    counter = _ValidPasses()
    cfg = tiny_config(tiny_data, **{"optim.epochs": 2, "model.freeze": freeze, "debug.enabled": debug})
    result = train(cfg, tmp_path / "run", callbacks=[counter])
    assert counter.valid == passes
    best = result.history[result.best_epoch - 1]["valid"]
    assert result.valid["n"] == best["n"] and result.valid["loss"] == pytest.approx(best["loss"], rel=2e-2)
    if passes == 2:
        assert result.valid == best
