"""PNG plots of a run: loss/accuracy curves, confusion matrices and reliability diagrams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from dogclf.fsutil import atomic_write


def subplots(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (8, 4), **kw: Any) -> tuple[Figure, Any]:
    """A figure and its axes, made without pyplot: no backend switch, no display, nothing global to close."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kw)


def save_figure(fig: Figure, out: Path) -> Path:
    """Lay out and write `out` as a PNG atomically."""
    fig.tight_layout()
    atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=100))
    return out


def plot_curves(history: list[dict], out: Path) -> Path:
    """Train/valid loss and top-1 per epoch."""
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = subplots(1, 2, figsize=(10, 4))
    for phase in ("train", "valid"):
        ax_loss.plot(epochs, [r[phase]["loss"] for r in history], marker="o", label=phase)
        ax_acc.plot(epochs, [r[phase]["top1"] for r in history], marker="o", label=phase)
    ax_loss.set(title="loss", xlabel="epoch")
    ax_acc.set(title="top-1 accuracy", xlabel="epoch", ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, out)


def plot_confusion(confusion: list[list[int]], class_names: list[str], out: Path, title: str) -> Path:
    """Row-normalized confusion matrix; labels shown when there are few classes."""
    import numpy as np

    matrix = np.asarray(confusion, dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    n = len(class_names)
    side = min(20, max(5, n * 0.35))
    fig, ax = subplots(figsize=(side, side))
    image = ax.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set(title=title, xlabel="predicted", ylabel="true")
    if n <= 40:
        ax.set_xticks(range(n), class_names, rotation=90, fontsize=8)
        ax.set_yticks(range(n), class_names, fontsize=8)
        if n <= 15:
            for i in range(n):
                for j in range(n):
                    if matrix[i, j]:
                        color = "white" if normalized[i, j] > 0.5 else "black"
                        ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8, color=color)
    return save_figure(fig, out)


def plot_reliability(report: dict | None, out: Path, title: str = "") -> Path | None:
    """Reliability diagram: accuracy per confidence bin before and after temperature scaling, vs the diagonal."""
    if report is None:
        return None
    if report.get("in_sample"):
        title = f"{title} (in-sample: T fitted here)"
    fig, ax = subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label="perfectly calibrated")
    for name, color, offset in (("before", "tab:red", -0.25), ("after", "tab:blue", 0.25)):
        bins = [b for b in report[name]["reliability"] if b["n"]]
        width = 1 / len(report[name]["reliability"])
        centers = [(b["low"] + b["high"]) / 2 for b in bins]
        low, high = report[name].get("ece_interval", (None, None))
        spread = f", 95% {low:.3f}-{high:.3f}" if low is not None else ""
        label = f"T={1.0 if name == 'before' else report['temperature']:.3g} (ECE {report[name]['ece']:.3f}{spread})"
        lefts = [c + offset * width for c in centers]
        ax.bar(lefts, [b["accuracy"] for b in bins], width=width / 2, color=color, alpha=0.6, label=label)
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], color=color, marker="o")
    ax.set(title=f"reliability {title}".strip(), xlabel="top-1 confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, out)
