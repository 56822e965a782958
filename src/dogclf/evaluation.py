"""Evaluation: loss/top-1/top-5, per-class accuracy and the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from dogclf.artifact import Artifact, load_artifact
from dogclf.runtime import Runtime, resolve_runtime
from dogclf.training.running import RunningMetrics


@dataclass
class EvalResult:
    """Metrics of one split; `confusion[i][j]` counts true class i predicted as j."""

    loss: float
    top1: float
    top5: float
    n: int
    confusion: list[list[int]] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)

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

    def metrics(self) -> dict[str, float]:
        """Loss, top-1, top-5 and sample count, without the per-class detail."""
        return {"loss": self.loss, "top1": self.top1, "top5": self.top5, "n": self.n}

    def to_dict(self) -> dict:
        """Everything as JSON-ready data, for `dogclf evaluate --json` and the run summary."""
        return {
            **self.metrics(),
            "per_class_accuracy": self.per_class_accuracy,
            "confusion": self.confusion,
            "class_names": self.class_names,
            "most_confused": self.most_confused(),
        }


@torch.inference_mode()
def evaluate_loader(
    model: nn.Module, loader: DataLoader, runtime: Runtime, num_classes: int, class_names: list[str] | None = None
) -> EvalResult:
    """Plain cross-entropy (no smoothing) summed per sample, accuracy and confusion over a loader."""
    model.eval()
    running = RunningMetrics()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for images, targets in loader:
        x = runtime.to_input(images)
        y = targets.to(runtime.device)
        with runtime.autocast():
            logits = model(x)
        logits = logits.float()
        running.update(float(F.cross_entropy(logits, y, reduction="sum")), logits, y)
        pred = logits.argmax(1).cpu()
        confusion += torch.bincount(targets * num_classes + pred, minlength=num_classes**2).view(num_classes, -1)
    r = running.result()
    return EvalResult(r["loss"], r["top1"], r["top5"], r["n"], confusion.tolist(), list(class_names or []))


def evaluate(
    artifact: Artifact | str | Path,
    data: str | Path,
    split: str = "test",
    batch_size: int = 64,
    workers: int | None = None,
    precision: str = "auto",
) -> EvalResult:
    """Evaluate a saved model on one split of an ImageFolder dataset, with the artifact's preprocessing."""
    from dogclf.config import RuntimeConfig
    from dogclf.data.dataset import ImageDataset, default_workers, make_loader
    from dogclf.data.discovery import discover
    from dogclf.data.preprocess import eval_transform
    from dogclf.errors import DatasetError

    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    layout = discover(data)
    if split not in layout.splits or not layout.splits[split]:
        raise DatasetError(f"{data}: split {split!r} has no images (have: {sorted(layout.splits)})")
    if layout.classes != art.class_names:
        raise DatasetError(
            f"{data}: classes {layout.classes[:5]}... do not match the model's {art.class_names[:5]}... "
            f"({len(layout.classes)} vs {len(art.class_names)})"
        )
    runtime = resolve_runtime(RuntimeConfig(precision=precision))
    model = runtime.prepare_model(art.model)
    pre = art.preprocess
    dataset = ImageDataset(layout.splits[split], eval_transform(pre), pre.decode_options())
    loader = make_loader(dataset, batch_size, shuffle=False, workers=default_workers(workers), seed=0)
    return evaluate_loader(model, loader, runtime, art.metadata.num_classes, art.class_names)
