"""ClassImbalance: training-set class counts, and classes mostly mispredicted in the valid confusion matrix."""

from __future__ import annotations

import numpy as np
from smdebug.core.modes import ModeKeys

from dogclf.debug.rules._common import DogclfRule, _list


def _wilson_low(p, n, z: float = 1.96):
    """Wilson score lower bound of proportions `p` out of `n`."""
    d = 1 + z * z / n
    return (p + z * z / (2 * n) - z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / d


class ClassImbalance(DogclfRule):
    """Fires when classes are imbalanced, or a class with enough valid images is mostly mispredicted.

    Imbalanced: the largest training class has more than `threshold_imbalance` times the images of the smallest
    (the saved class counts). Mispredicted: in the valid confusion matrices of the latest `patience`
    validations (the model as trained so far, not its untrained start), a class with at least `min_samples`
    images has more than `threshold_misprediction` of them wrong with 95% confidence (Wilson lower bound), at
    each. No class with `min_samples` valid images: the misprediction check is NotEvaluated.
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
        self.counted, self.checked, self.streak, self.ratio_seen = False, False, 0, None
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

    def _check_confusion(self, confusion: np.ndarray) -> bool:
        """Count validations in a row with a class of `min_samples` images mostly mispredicted."""
        n = confusion.sum(axis=1)
        eligible = np.flatnonzero(n >= self.min_samples)
        if not eligible.size:
            self.streak = 0
            return False
        self.checked = True
        wrong = 1 - np.diag(confusion)[eligible] / n[eligible]
        worst = int(np.argmax(_wilson_low(wrong, n[eligible])))
        self.streak = self.streak + 1 if _wilson_low(wrong[worst], n[eligible][worst]) > self.misprediction else 0
        if self.streak >= self.patience:
            c = int(eligible[worst])
            return self.fire(
                f"class {c}: {int(round(wrong[worst] * n[c]))}/{int(n[c])} valid images mispredicted "
                f"(95% lower bound > {self.misprediction:g}) at the latest {self.streak} validation(s)"
            )
        return False

    def insufficient(self) -> str:
        """NotEvaluated reason: no class had `min_samples` valid images (counts alone do not decide)."""
        if self.checked:
            return ""
        counts = f"class counts balanced (ratio {self.ratio_seen:.3g}); " if self.counted else ""
        return f"{counts}mispredictions not checked: no class has {self.min_samples} valid images in a saved confusion"
