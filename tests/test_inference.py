"""The inference copy of a model: batch norms folded, bf16 weights cast once, the artifact's model untouched."""

import torch
from torch import nn

from dogclf.config import RuntimeConfig
from dogclf.models.factory import create_model
from dogclf.models.folding import inference_model
from dogclf.runtime import resolve_runtime


def _trained_looking_resnet18() -> nn.Module:
    """resnet18 whose batch norms carry non-trivial statistics, as after training."""
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=7)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def _runtime(precision):
    return resolve_runtime(RuntimeConfig(device="cpu", precision=precision, channels_last=False))


def test_fp32_copy_folds_batch_norms_and_keeps_the_logits():
    model = _trained_looking_resnet18()
    x = torch.randn(4, 3, 64, 64)
    with torch.inference_mode():
        expected = model(x)
        folded = inference_model(model, _runtime("fp32"))
        got = folded(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is left as it is
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_bf16_copy_has_bf16_weights_and_matches_fp32_top1():
    model = _trained_looking_resnet18()
    x = torch.randn(8, 3, 64, 64)
    runtime = _runtime("bf16")
    copy = inference_model(model, runtime)
    with torch.inference_mode(), runtime.autocast():
        got = copy(x).float()
    with torch.inference_mode():
        expected = model(x)
    assert {p.dtype for p in copy.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert torch.equal(got.argmax(1), expected.argmax(1))
    assert (got - expected).abs().max() <= 0.05 * expected.abs().max()


class _Untraceable(nn.Module):
    """Control flow on tensor values: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.bn(self.conv(x))
        return y if y.sum() > 0 else -y


def test_a_model_fx_cannot_trace_is_served_unfolded():
    model = _Untraceable().eval()
    x = torch.randn(2, 3, 8, 8)
    copy = inference_model(model, _runtime("fp32"))
    assert copy is not model and any(isinstance(m, nn.BatchNorm2d) for m in copy.modules())
    with torch.inference_mode():
        assert torch.equal(copy(x), model(x))
