"""ClassImbalance: training-set class counts, and classes mostly mispredicted in the valid confusion matrix."""

from __future__ import annotations

import numpy as np
from smdebug.core.modes import ModeKeys

from dogclf.debug.rules._common import DogclfRule, _list


def _wilson(p, n, z: float = 1.96, sign: float = -1.0):
    """Wilson score bound (lower with sign -1, upper with +1) of proportions `p` out of `n`."""
    d = 1 + z * z / n
    return (p + z * z / (2 * n) + sign * z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / d


class ClassImbalance(DogclfRule):
    """Fires when classes are imbalanced, or a class with enough valid images is mostly mispredicted.

    Imbalanced: the largest training class has more than `threshold_imbalance` times the images of the smallest
    (the saved class counts). Mispredicted: in the valid confusion matrices of the latest `patience`
    validations (the model as trained so far, not its untrained start), the same class, with at least
    `min_samples` images, has more than `threshold_misprediction` of them wrong and more than the typical
    (median) class, each with 95% confidence (Wilson bounds), at each, and the typical class is mostly right
    (its error's upper bound under 1/2): a model still bad on most classes (under-trained) says nothing about
    one class. Or the model is below chance overall (accuracy's upper bound under 1 / classes): systematically
    wrong. NotEvaluated when no class has `min_samples` valid images, when the typical class is not learned yet,
    or when a class is flagged while top-1 still rises significantly (a class not learned *yet*).
    """

    explanation = "Classes are imbalanced, or a class is mostly mispredicted on the validation set."
    advice = "Collect more images of small classes, or use a weighted loss or a class-balanced sampler."

    def __init__(
        self,
        base_trial,
        threshold_imbalance=10,
        threshold_misprediction=0.7,
        min_samples=10,
        patience=2,
        counts_regex=".*class_counts",
        confusion_regex=".*valid_confusion.*",
    ) -> None:
        super().__init__(base_trial)
        self.imbalance, self.misprediction = float(threshold_imbalance), float(threshold_misprediction)
        self.min_samples, self.patience = int(min_samples), max(1, int(patience))
        self.counts = self.tensors((), _list(counts_regex)) if _list(counts_regex) else []
        self.confusion = self.tensors((), _list(confusion_regex)) if _list(confusion_regex) else []
        self.names = [*self.counts, *self.confusion]
        self.counted, self.checked, self.ratio_seen = False, False, None
        self.streak: list[dict[int, str]] = []  # per validation in a row: {class (-1: all): what is wrong}
        self.hits: list[tuple[float, float]] = []  # per validation in the streak: (right, images)
        self.learning, self.untrained = "", ""
        self._latest: list[int] | None = None

    def missing(self) -> str:
        """Needs saved class counts or valid confusion matrices."""
        return "" if self.names else "no class counts or valid confusion saved (collection 'dataset')"

    def _ratio(self, counts) -> float:
        counts = np.asarray(counts, dtype=float)
        return float("inf") if counts.min() <= 0 else float(counts.max() / counts.min())

    def invoke_at_step(self, step):
        """Check the saved class counts, then each validation's confusion matrix."""
        for name in self.counts:
            v = self.value(name, step)
            if v is not None and v.size > 1:
                self.counted, self.ratio_seen = True, self._ratio(v)
                if self.ratio_seen > self.imbalance:
                    counts = v.astype(int).tolist()
                    return self.fire(f"class counts {counts}: ratio {self.ratio_seen:.3g} > {self.imbalance:g}")
        if self._latest is None:
            steps = {s for n in self.confusion for s in self.base_trial.tensor(n).steps(mode=ModeKeys.EVAL)}
            self._latest = [self.base_trial.global_step(ModeKeys.EVAL, s) for s in sorted(steps)][-self.patience :]
        if step not in self._latest:
            return False
        matrices = [m for m in (self.value(n, step) for n in self.confusion) if m is not None and m.ndim == 2]
        return bool(matrices) and self._check_confusion(matrices[0])

    def _flagged(self, confusion: np.ndarray) -> dict[int, str]:
        """{class: finding} of the classes mostly and unusually mispredicted; -1 for a below-chance model."""
        n = confusion.sum(axis=1)
        eligible = np.flatnonzero(n >= self.min_samples)
        out: dict[int, str] = {}
        if not eligible.size:
            return out
        self.checked = True
        wrong = 1 - np.diag(confusion)[eligible] / n[eligible]
        low = _wilson(wrong, n[eligible])
        typical = float(np.median(wrong))
        typical_high = _wilson(typical, float(np.median(n[eligible])), sign=1.0)
        self.untrained = (
            f"per-class errors not judged: the typical class is still wrong on {typical:.0%} of its valid images "
            "(the model has not learned most classes yet)"
            if typical_high >= 0.5
            else ""
        )
        flagged = (low > self.misprediction) & (low > typical_high) & (typical_high < 0.5)
        for i in np.flatnonzero(flagged):
            c = int(eligible[i])
            out[c] = (
                f"class {c}: {int(round(wrong[i] * n[c]))}/{int(n[c])} valid images mispredicted (95% lower bound "
                f"> {self.misprediction:g} and > the typical class's {typical:.2f} error)"
            )
        total, classes = float(n.sum()), int((n > 0).sum())
        accuracy = float(np.trace(confusion)) / total
        if classes > 1 and total >= self.min_samples and _wilson(accuracy, total, sign=1.0) < 1 / classes:
            out[-1] = (
                f"top-1 {accuracy:.2f} on {int(total)} valid images, below chance (1/{classes}): classes mispredicted "
                "systematically"
            )
        return out

    def _check_confusion(self, confusion: np.ndarray) -> bool:
        """Fire when the same class (or the whole model) is flagged at `patience` validations in a row.

        Not while the model is still learning (top-1 significantly higher than at the first of those
        validations): a class not learned *yet* is no finding; the run says so as NotEvaluated.
        """
        self.streak = [*self.streak, self._flagged(confusion)][-self.patience :]
        self.hits = [*self.hits, (float(np.trace(confusion)), float(confusion.sum()))][-self.patience :]
        if len(self.streak) < self.patience:
            return False
        common = set.intersection(*(set(f) for f in self.streak))
        if not common:
            return False
        (k0, n0), (k1, n1) = self.hits[0], self.hits[-1]
        pooled = (k0 + k1) / max(n0 + n1, 1)
        if n0 and n1 and k1 / n1 - k0 / n0 > 1.96 * np.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1)):
            self.learning = (
                f"{self.streak[-1][min(common)]}, but the model is still learning (top-1 {k0 / n0:.2f} -> "
                f"{k1 / n1:.2f} over the latest {self.patience} validations): not judged until it levels off"
            )
            return False
        return self.fire(f"{self.streak[-1][min(common)]} at the latest {self.patience} validation(s)")

    def insufficient(self) -> str:
        """NotEvaluated reason: no class had `min_samples` valid images, or the model was still learning."""
        if self.learning or self.untrained:
            return self.learning or self.untrained
        if self.checked:
            return ""
        counts = f"class counts balanced (ratio {self.ratio_seen:.3g}); " if self.counted else ""
        return f"{counts}mispredictions not checked: no class has {self.min_samples} valid images in a saved confusion"
