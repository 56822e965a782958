"""The accuracy gate: an export against eager fp32 on a held-out split, both measured by `evaluate`."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from dogclf.artifact import Artifact
from dogclf.backends.exports import AccuracyCheck
from dogclf.backends.select import Choice
from dogclf.errors import ArtifactError, DogclfError
from dogclf.evaluation import EvalResult, evaluate
from dogclf.export.settings import DEFAULT_MAX_DROP
from dogclf.stats import paired_drop_upper

log = logging.getLogger(__name__)


def min_images(max_drop: float) -> int:
    """Images needed for one image (100 / n points) to be worth no more than `max_drop` points."""
    return math.ceil(100 / max_drop) if max_drop > 0 else 0


class AccuracyGateError(DogclfError):
    """An export lost more top-1 accuracy than allowed; nothing was written."""


def _ece(result: EvalResult) -> float | None:
    """ECE at the artifact's temperature: what served probabilities look like."""
    report = result.calibration()
    return None if report is None else float(report["after"]["ece"])


def compare(reference: EvalResult, result: EvalResult, split: str, max_drop: float, precision: str) -> AccuracyCheck:
    """The export's top-1, agreement and ECE beside the reference's; passed when the drop's upper bound is within.

    The bound is paired: it comes from the images whose answer changed (right -> wrong, wrong -> right). Fewer
    than min_images(max_drop) images cannot show a drop of max_drop at all: that is logged as a warning.
    """
    if reference.logits is None or result.logits is None or reference.targets is None:
        raise ArtifactError(f"the accuracy gate needs the logits of both models on {split}")
    if reference.logits.shape != result.logits.shape:
        raise ArtifactError(f"export logits {tuple(result.logits.shape)} do not match eager's on {split}")
    drop = round((reference.top1 - result.top1) * 100, 4)  # passed is judged on the figure recorded
    agreement = (reference.logits.argmax(1) == result.logits.argmax(1)).float().mean()
    right_before = reference.logits.argmax(1).eq(reference.targets)
    right_after = result.logits.argmax(1).eq(reference.targets)
    lost, gained = int((right_before & ~right_after).sum()), int((~right_before & right_after).sum())
    upper = round(paired_drop_upper(lost, gained, result.n), 4)  # passed is judged on the figure recorded
    needed = min_images(max_drop)
    if result.n < needed:
        log.warning(
            "the accuracy gate measured %d images of %s: one image is %.3g points, so it cannot promise a drop of at "
            "most %g points (that needs %d images)",
            result.n,
            split,
            100 / max(result.n, 1),
            max_drop,
            needed,
        )
    return AccuracyCheck(
        split=split,
        n=result.n,
        top1_reference=reference.top1,
        top1=result.top1,
        drop_points=drop,
        agreement=float(agreement) if result.n else 1.0,
        ece=_ece(result),
        ece_reference=_ece(reference),
        max_logit_diff=float((reference.logits - result.logits).abs().max()) if result.n else 0.0,
        precision=precision,
        max_drop_points=max_drop,
        lost=lost,
        gained=gained,
        drop_upper_points=upper,
        min_n=needed,
        passed=upper <= max_drop,
    )


def measure(
    artifact: Artifact,
    candidate: Choice,
    data: str | Path,
    split: str,
    max_drop: float = DEFAULT_MAX_DROP,
    precision: str = "auto",
    batch_size: int = 64,
) -> AccuracyCheck:
    """Evaluate eager fp32 (the reference) and `candidate` at `precision` on the same images, and compare.

    `candidate` may name an export folder that is not published yet: evaluate() runs it as given.
    """
    from dogclf.config import RuntimeConfig
    from dogclf.runtime import resolve_runtime

    precision = resolve_runtime(RuntimeConfig(device="cpu", precision=precision)).precision  # OpenVINO's hint
    if candidate.engine == "onnx":
        precision = "fp32"  # onnxruntime's CPU provider computes in fp32 (int8 where quantized) whatever is asked
    reference = evaluate(artifact, data, split, batch_size, precision="fp32", backend="eager", whole_external=False)
    result = evaluate(artifact, data, split, batch_size, precision=precision, backend=candidate, whole_external=False)
    return compare(reference, result, split, max_drop, precision)


def enforce(check: AccuracyCheck, name: str, force: bool) -> AccuracyCheck:
    """Raise AccuracyGateError when `check` failed, unless `force` (then it is kept, marked forced)."""
    if check.passed:
        return check
    if force:
        return check.model_copy(update={"forced": True})
    raise AccuracyGateError(
        f"{name} export refused: top-1 dropped {check.drop_points:.2f} points on {check.split} "
        f"({check.top1_reference:.4f} -> {check.top1:.4f}, n={check.n}, {check.lost} answers lost, {check.gained} "
        f"gained, agreement {check.agreement:.1%}); the drop's 95% upper bound {check.drop_upper_points:.2f} is "
        f"more than --max-drop {check.max_drop_points:g}; nothing was written. Calibrate on more representative "
        "images, or pass --force to keep it (auto backend selection will not use it)"
    )
