"""Evaluation: loss/top-1/top-5, macro metrics, per-class accuracy, the confusion matrix and calibration."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from dogclf.artifact import Artifact, load_artifact
from dogclf.backends.select import Choice
from dogclf.running_metrics import RunningMetrics
from dogclf.runtime import Runtime, resolve_runtime


@dataclass
class EvalResult:
    """Metrics of one split; `confusion[i][j]` counts true class i predicted as j."""

    loss: float
    top1: float
    top5: float | None
    n: int
    confusion: list[list[int]] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    logits: torch.Tensor | None = field(default=None, repr=False)
    targets: torch.Tensor | None = field(default=None, repr=False)
    temperature: float = 1.0
    data: str = ""
    in_sample: bool = False

    @property
    def balanced_accuracy(self) -> float:
        """Mean recall over the classes that have samples (NaN when none do)."""
        recalls = [r for r in self.per_class_accuracy.values() if r is not None]
        return sum(recalls) / len(recalls) if recalls else math.nan

    @property
    def macro_f1(self) -> float:
        """Unweighted mean F1 over the classes that have samples or predictions (NaN when none)."""
        scores = []
        for i, row in enumerate(self.confusion):
            true, predicted = sum(row), sum(r[i] for r in self.confusion)
            if true or predicted:
                scores.append(2 * row[i] / (true + predicted))
        return sum(scores) / len(scores) if scores else math.nan

    def calibration(self) -> dict | None:
        """NLL/ECE before and after this result's temperature, reliability bins and the selective table."""
        if self.logits is None or self.targets is None:
            return None
        from dogclf.calibration import calibration_report

        return calibration_report(self.logits, self.targets, self.temperature, self.in_sample)

    @property
    def per_class_accuracy(self) -> dict[str, float | None]:
        """Recall of each class from the confusion matrix; None for a class with no samples."""
        out = {}
        for i, row in enumerate(self.confusion):
            total = sum(row)
            out[self.class_names[i] if self.class_names else str(i)] = row[i] / total if total else None
        return out

    def most_confused(self, k: int = 5) -> list[tuple[str, str, int]]:
        """The k largest off-diagonal cells as (true, predicted, count)."""
        cells = [(c, i, j) for i, row in enumerate(self.confusion) for j, c in enumerate(row) if i != j and c]
        names = self.class_names or [str(i) for i in range(len(self.confusion))]
        return [(names[i], names[j], c) for c, i, j in sorted(cells, reverse=True)[:k]]

    def metrics(self) -> dict[str, float | None]:
        """Loss, top-1, top-5 (None with 5 classes or fewer), balanced accuracy, macro F1 and sample count."""
        return {
            "loss": self.loss,
            "top1": self.top1,
            "top5": self.top5,
            "balanced_accuracy": self.balanced_accuracy,
            "macro_f1": self.macro_f1,
            "n": self.n,
        }

    def counted(self) -> dict[str, object]:
        """Sample size, top-1 with its 95% Wilson interval, and which images were scored."""
        from dogclf.stats import wilson_interval

        low, high = wilson_interval(round(self.top1 * self.n), self.n)
        return {"n": self.n, "top1": self.top1, "top1_interval": [low, high], "data": self.data}

    def to_dict(self) -> dict:
        """Everything as JSON-ready data, for `dogclf evaluate --json` and the run summary."""
        return {
            **self.metrics(),
            "top1_interval": self.counted()["top1_interval"],
            "data": self.data,
            "calibration": self.calibration(),
            "per_class_accuracy": self.per_class_accuracy,
            "confusion": self.confusion,
            "class_names": self.class_names,
            "most_confused": self.most_confused(),
        }


@torch.inference_mode()
def evaluate_loader(
    model: nn.Module, loader: DataLoader, runtime: Runtime, num_classes: int, class_names: list[str] | None = None
) -> EvalResult:
    """Plain cross-entropy (no smoothing) summed per sample, accuracy and confusion of `model` over a loader."""
    model.eval()

    def forward(images: torch.Tensor) -> torch.Tensor:
        with runtime.autocast():
            return model(runtime.to_input(images)).float().cpu()

    return evaluate_forward(forward, loader, num_classes, class_names)


@torch.inference_mode()
def evaluate_forward(
    forward: Callable[[torch.Tensor], torch.Tensor],
    loader: DataLoader,
    num_classes: int,
    class_names: list[str] | None = None,
) -> EvalResult:
    """Metrics of `forward` (a CPU batch -> float32 CPU logits, any backend) over a loader."""
    running = RunningMetrics()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    all_logits, all_targets = [], []
    for images, targets in loader:
        logits = forward(images)
        running.update(float(F.cross_entropy(logits, targets, reduction="sum")), logits, targets)
        pred = logits.argmax(1)
        confusion += torch.bincount(targets * num_classes + pred, minlength=num_classes**2).view(num_classes, -1)
        all_logits.append(logits)
        all_targets.append(targets)
    r = running.result()
    logits = torch.cat(all_logits) if all_logits else torch.zeros(0, num_classes)
    targets = torch.cat(all_targets) if all_targets else torch.zeros(0, dtype=torch.int64)
    return EvalResult(
        r["loss"], r["top1"], r["top5"], r["n"], confusion.tolist(), list(class_names or []), logits, targets
    )


def evaluate(
    artifact: Artifact | str | Path,
    data: str | Path,
    split: str = "test",
    batch_size: int = 64,
    workers: int | None = None,
    precision: str = "auto",
    raw_scores: bool = False,
    backend: str | Choice = "auto",
    whole_external: bool = True,
) -> EvalResult:
    """Evaluate a saved model on one split of an ImageFolder dataset, with the artifact's preprocessing.

    The network runs on `backend` (dogclf.backends; `auto` picks a gated export of the artifact, else eager
    torch). The result carries the artifact's temperature (1 with `raw_scores`) for its calibration report.
    Given the run's own data, the splits are the run's record (dogclf.data.splits); data sharing no image with
    it is an external test set: all its images when it is a flat folder and `whole_external`.
    """
    from dogclf.config import RuntimeConfig
    from dogclf.data.dataset import ImageDataset, default_workers, loader_workers, make_loader
    from dogclf.data.preprocess import eval_transform
    from dogclf.data.splits import SplitRecord, resolve_data
    from dogclf.errors import DatasetError
    from dogclf.inference import pixel_logits, temperature_of

    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    resolved = resolve_data(data, SplitRecord.read(art.path) if art.path else None, external_all=whole_external)
    layout = resolved.layout
    if resolved.source == "external" and layout.split_from_flat:
        split = "test"  # every image of a flat external dataset is held out
    if split not in layout.splits or not layout.splits[split]:
        raise DatasetError(f"{data}: split {split!r} has no images (have: {sorted(layout.splits)})")
    if layout.classes != art.class_names:
        raise DatasetError(
            f"{data}: classes {layout.classes[:5]}... do not match the model's {art.class_names[:5]}... "
            f"({len(layout.classes)} vs {len(art.class_names)})"
        )
    from dogclf.backends.load import load_backend

    runtime = resolve_runtime(RuntimeConfig(precision=precision))
    engine = load_backend(art, backend, runtime)
    pre = art.preprocess
    transform = eval_transform(pre)  # uint8 crops, as predict and the server send them to the engine
    dataset = ImageDataset(layout.splits[split], transform.pixels, pre.decode_options())
    workers = loader_workers(default_workers(workers), len(dataset), batch_size)
    loader = make_loader(dataset, batch_size, shuffle=False, workers=workers, seed=0)
    forward = functools.partial(pixel_logits, engine, transform)
    result = evaluate_forward(forward, loader, art.metadata.num_classes, art.class_names)
    result.temperature = temperature_of(art, raw_scores)
    result.data = resolved.describe(split)
    # The temperature was fitted on the run's valid images: their calibration figures are in-sample.
    result.in_sample = split == "valid" and resolved.source != "external" and result.temperature != 1.0
    return result
