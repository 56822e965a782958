"""Rules on losses: LossNotDecreasing, Overfit, Overtraining, deciding on means and trends against the run's noise."""

from __future__ import annotations

import numpy as np
from smdebug.core.modes import ModeKeys

from dogclf.debug.rules._common import _MODES, _bool, _list, _LossRule, noise_sd


def _trend_drop(values: np.ndarray, sd: float) -> tuple[float, float]:
    """The least-squares fall of `values` over half their length, and its standard error at per-step noise `sd`."""
    m = len(values)
    x = np.arange(m) - (m - 1) / 2
    slope = float(x @ values) / float(x @ x)
    return -slope * (m // 2), sd * (m // 2) * float(np.sqrt(12 / (m**3 - m)))


class LossNotDecreasing(_LossRule):
    """Fires on a NaN/inf or exploding loss, a sustained rise above the early loss, or a stall while still high.

    Decisions are taken at each `num_steps`-step window's end, on means, against the run's own per-step noise
    (the robust SD of step-to-step differences). Exploded: a window's mean is `explosion_factor` times the
    first loss (the model before any update) or more, an order of magnitude by default: logits blew up, even if
    the loss later settles. Diverged: the last `sustain` windows all above the first window's mean (or the
    first loss, when the rise began inside that window) by `increase_threshold_percent` %, with confidence `z`,
    so a short bump that recovers never decides. Stalled: over the last two blocks (a block is a third of the
    steps so far, at least `patience` windows) the least-squares fall per block is under `diff_percent` % per
    `num_steps` steps, with confidence `z`, while the loss is above `progress_percent` % of that reference
    (lower is converging), or the least-squares fall over every step since the first is under that rate (a
    loss flat from the start: every loss is evidence); blocks too short for their noise to show such a drop or
    a clear one decide nothing, and a latest fall whose interval straddles that drop is NotEvaluated, as is a
    run never decided (with the number of losses a stall needs at the run's noise). Without
    `mode`, the first of EVAL, TRAIN, GLOBAL with two full windows is checked.
    """

    explanation = "The loss is NaN, rose far above its start (diverged), or stopped falling while still high."
    advice = "Check the learning rate (not 0, not too large), that parameters are trainable, and the labels."

    def __init__(
        self,
        base_trial,
        collection_names=None,
        tensor_regex=None,
        use_losses_collection=True,
        num_steps=10,
        diff_percent=0.0,
        increase_threshold_percent=5.0,
        mode=None,
        patience=2,
        progress_percent=25.0,
        z=3.0,
        sustain=4,
        explosion_factor=10.0,
    ) -> None:
        super().__init__(base_trial)
        self.names = self.loss_names(_list(collection_names), _list(tensor_regex), _bool(use_losses_collection))
        self.explosion = float(explosion_factor)
        self.num_steps, self.patience, self.sustain = int(num_steps), int(patience), int(sustain)
        self.diff_percent = float(diff_percent) if str(diff_percent).strip().lower() not in ("", "none") else 0.0
        self.increase, self.progress, self.z = float(increase_threshold_percent), float(progress_percent), float(z)
        self.mode = None if mode in (None, "", "None") else _MODES[str(mode).upper()]
        self._series: list[tuple[int, float]] | None = None
        self._index: dict[int, int] = {}
        self.decided, self._open = False, ""  # _open: why the latest stall check was inconclusive

    def _pick(self) -> list[tuple[int, float]]:
        modes = [self.mode] if self.mode is not None else [ModeKeys.EVAL, ModeKeys.TRAIN, ModeKeys.GLOBAL]
        for mode in modes:
            series = self.series(self.names, mode)
            if len(series) >= 2 * self.num_steps or self.mode is not None:
                self._mode = mode
                return series
        self._mode = modes[-1]
        return self.series(self.names, self._mode)

    def _position(self, step) -> int | None:
        """The index in the picked series of global `step` (None when it is not a step of that mode)."""
        if self._series is None:
            self._series = self._pick()
            self._index = {s: i for i, (s, _) in enumerate(self._series)}
        if self._mode != ModeKeys.GLOBAL and self.mode_of(step) != self._mode:
            return None
        return self._index.get(self.base_trial.mode_step(step) if self._mode != ModeKeys.GLOBAL else step)

    def invoke_at_step(self, step):
        """Fire on a non-finite loss at once; at each window's end check divergence, then a stall."""
        i = self._position(step)
        if i is None:
            return False
        values = np.array([v for _, v in self._series[: i + 1]])
        if not np.isfinite(values[-1]):
            return self.fire(f"loss is {values[-1]} at step {self._series[i][0]}")
        if (i + 1) % self.num_steps:
            return False
        if self._exploded(values):
            return True
        sd = noise_sd(values)
        # The first window's mean, unless the loss rose inside it: then the first loss (before any update).
        ref = min(float(values[: self.num_steps].mean()), float(values[0]) + self.z * sd)
        return self._diverged(values, ref, sd) or self._stalled(values, ref, sd)

    def _exploded(self, values: np.ndarray) -> bool:
        window = float(values[-self.num_steps :].mean())
        if values[0] > 0 and window >= self.explosion * values[0]:
            return self.fire(
                f"mean loss {window:.4g} over steps {self._series[len(values) - self.num_steps][0]}-"
                f"{self._series[len(values) - 1][0]} is {window / values[0]:.3g} times the first loss "
                f"{values[0]:.4g} (>= {self.explosion:g}): the loss exploded"
            )
        return False

    def _diverged(self, values: np.ndarray, ref: float, sd: float) -> bool:
        n, k = self.num_steps, self.sustain
        if len(values) < (k + 1) * n:
            return False
        limit = ref * (1 + self.increase / 100)
        windows = values[-k * n :].reshape(k, n).mean(axis=1)
        block = float(windows.mean())
        if windows.min() > limit and block - self.z * sd / np.sqrt(k * n) > limit:
            return self.fire(
                f"mean loss {block:.4g} over the last {k * n} steps, every {n}-step window above "
                f"{limit:.4g} ({self.increase:g}% over the first window's {ref:.4g})"
            )
        return False

    def _stalled(self, values: np.ndarray, ref: float, sd: float) -> bool:
        b = max(self.patience * self.num_steps, len(values) // 3)
        if len(values) < 2 * b:
            return False
        before = float(values[-2 * b : -b].mean())
        if float(values[-b:].mean()) <= ref * self.progress / 100:
            self.decided, self._open = True, ""
            return False  # converging: far below where it started
        drop, se = _trend_drop(values[-2 * b :], sd)  # fall over `b` steps by least squares, every loss counted
        need = before * self.diff_percent / 100 * b / self.num_steps  # the least drop that counts as progress
        margin = self.z * se
        if drop - margin > need:
            self.decided, self._open = True, ""
            return False  # clear progress
        if margin > need:
            return self._stuck(values, ref, sd)  # the noise could hide a drop of `need` in the blocks
        if drop + margin < need:
            return self.fire(
                f"the loss fell {drop:.3g} over the last {b} steps (least squares over {2 * b}; mean now "
                f"{float(values[-b:].mean()):.4g}): under {self.diff_percent:g}% of {before:.4g} per "
                f"{self.num_steps} steps (noise {sd:.3g} per step) while above {self.progress:g}% of the start "
                f"{ref:.4g}"
            )
        if self._stuck(values, ref, sd):
            return True
        self.decided = False  # the latest evidence straddles the threshold: neither progress nor a stall
        self._open = (
            f"the loss fell {drop:.3g} ± {margin:.3g} over the last {b} steps of {len(values)}: cannot tell a stall "
            f"from the {need:.3g} that counts as progress ({self.diff_percent:g}% per {self.num_steps} steps)"
        )
        return False

    def _stuck(self, values: np.ndarray, ref: float, sd: float) -> bool:
        """Fire when the loss never fell at the rate that counts since the first step (every loss in one fit).

        Only for a loss that never went clearly below its start: a window below it by `z` standard errors shows
        progress that a bump (x2.5 for 20 steps) after it could hide from a straight-line fit.
        """
        m, n = len(values), self.num_steps
        windows = values[n : m - m % n].reshape(-1, n).mean(axis=1)
        if windows.size and float(windows.min()) < ref - self.z * sd * np.sqrt(2 / n):
            return False
        drop, se = _trend_drop(values, sd)
        need = ref * self.diff_percent / 100 * (m // 2) / self.num_steps
        if drop + self.z * se < need:
            return self.fire(
                f"the loss fell {drop:.3g} ± {self.z * se:.3g} per {m // 2} steps over all {m} steps since the "
                f"start (least squares; mean now {float(values[-self.num_steps :].mean()):.4g}): under "
                f"{self.diff_percent:g}% of the start {ref:.4g} per {self.num_steps} steps (noise {sd:.3g} per step)"
            )
        return False

    def needed_steps(self, values: np.ndarray) -> int | None:
        """The fewest losses at this run's noise and start for which a flat loss can be shown stalled (None: never)."""
        sd, ref = noise_sd(values), float(values[: self.num_steps].mean())
        if not (self.diff_percent > 0 and ref > 0 and np.isfinite(sd)):
            return None
        rate = ref * self.diff_percent / 100 / self.num_steps  # the least fall per step that counts as progress
        m = float(np.cbrt(12 * (self.z * sd / rate) ** 2))  # z standard errors of the fitted slope below `rate`
        return max(int(np.ceil(m)) + 1, 2 * self.patience * self.num_steps)

    def insufficient(self) -> str:
        """NotEvaluated reason: too few losses, or too noisy, to tell a stall from slow progress."""
        if self.decided:
            return ""
        if self._open:
            return self._open
        values = np.array([v for _, v in self._series or []])
        if len(values) < 2 * self.patience * self.num_steps:
            return f"only {len(values)} losses saved; comparing windows needs {2 * self.patience * self.num_steps}"
        needed = self.needed_steps(values)
        return (
            f"{len(values)} losses with noise {noise_sd(values):.3g} per step cannot tell a stall from a drop of "
            f"{self.diff_percent:g}% per {self.num_steps} steps"
            + (f"; showing a stall at this noise needs at least about {needed} losses" if needed else "")
        )


class Overfit(_LossRule):
    """Fires when the valid-train gap of like-for-like losses is large and grows over `patience` validations.

    Like for like: the epoch's plain cross-entropy on the training set (saved with each validation) against
    the valid loss. At each of the last `patience` validations the gap is above `min_gap` and `ratio_threshold`
    times the train loss; across them it grew by more than `min_growth` (and the valid loss's own noise, once
    4 validations show it) while the valid loss did not improve, then or by the end: a gap undone by the run's
    last validation, whose loss ended below where the gap grew from, is a passing spike (stale BatchNorm statistics,
    one bad validation), not memorizing. Live, the later validations are not there yet. A converged, flat gap
    or one noisy validation never decides. Fewer than `patience` validations: NotEvaluated.
    """

    explanation = "Validation loss is well above training loss and the gap keeps growing: the model memorizes."
    advice = "Add data or augmentation, regularize (weight decay, dropout), freeze more layers, stop earlier."

    def __init__(
        self, base_trial, tensor_regex=None, start_step=0, patience=1, ratio_threshold=0.1, min_gap=0.0, min_growth=0.0
    ):
        super().__init__(base_trial)
        self.names = self.loss_names((), _list(tensor_regex), not _list(tensor_regex))
        self.start_step, self.patience, self.ratio = int(start_step), max(1, int(patience)), float(ratio_threshold)
        self.min_gap, self.min_growth, self.z = float(min_gap), float(min_growth), 2.0
        self._epochs: list[tuple[int, float, float]] | None = None
        self.decided = False

    def missing(self) -> str:
        """Needs saved loss tensors with validation (EVAL) steps among them."""
        if not self.names:
            return "no loss tensors saved (collection 'losses')"
        return "" if self.has_eval() else "no validation loss saved (EVAL mode)"

    def invoke_at_step(self, step):
        """At each validation, compare the gaps of the last `patience` validations."""
        if self._epochs is None:
            self._epochs = [e for e in self.epochs() if e[0] >= self.start_step]
        k = next((i for i, e in enumerate(self._epochs) if e[0] == step), None)
        if k is None or k < 1 or k + 1 < self.patience:
            return False
        self.decided = True
        last = self._epochs[k + 1 - self.patience : k + 1]
        base = self._epochs[max(k - self.patience, 0)]  # the validation the gap grew from
        gaps = [v - t for _, v, t in last]
        large = all(
            g > self.min_gap and g > self.ratio * max(abs(e[2]), 1e-12) for g, e in zip(gaps, last, strict=True)
        )
        valid = [v for _, v, _ in self._epochs[: k + 1]]
        noise = self.z * noise_sd(valid) * np.sqrt(2) if len(valid) >= 4 else 0.0
        growth, (_, v, t) = gaps[-1] - (base[1] - base[2]), last[-1]
        if large and v >= base[1] and growth > max(self.min_growth, noise) and not self._undone(k, base[1]):
            return self.fire(
                f"valid loss {v:.4g} vs train loss {t:.4g}: gap {gaps[-1]:.3g} (ratio {gaps[-1] / t:.3g}) grew "
                f"by {growth:.3g} over {k - max(k - self.patience, 0)} validation(s); the valid loss did not improve"
            )
        return False

    def _undone(self, k: int, before: float) -> bool:
        """Whether the run's last validation after k ended below `before`, where the gap grew from: a passing spike.

        One noisy later dip does not undo a gap the run ends with.
        """
        later = self._epochs[k + 1 :]
        return bool(later) and later[-1][1] < before

    def insufficient(self) -> str:
        """NotEvaluated reason: fewer validations than `patience`."""
        n = 0 if self._epochs is None else len(self._epochs)
        return "" if self.decided else f"{n} validation(s) with a train loss; needs {max(2, self.patience)}"


class Overtraining(_LossRule):
    """Fires when valid loss rose `delta` above its best for a patience fitted to the run, as train loss fell.

    Patience: a third of the validations so far, at least `min_patience` and at most `patience_validation`.
    The rise must also exceed twice the valid loss's own noise (robust SD of its differences), and the train
    loss must have fallen since the best by more than its own noise could (2 standard errors of a difference),
    so a stuck run whose losses only wander never decides it is overtraining. Fewer than
    3 x `min_patience` validations: NotEvaluated.
    """

    explanation = "Validation loss rose from its best while training loss kept falling: training too long."
    advice = "Enable early stopping (--early-stopping-patience) and keep the best checkpoint (done by default)."

    def __init__(self, base_trial, patience_validation=10, delta=0.1, min_patience=2) -> None:
        super().__init__(base_trial)
        self.names = self.loss_names()
        self.patience_valid, self.delta, self.min_patience = int(patience_validation), float(delta), int(min_patience)
        self._epochs: list[tuple[int, float, float]] | None = None
        self.decided = False

    def missing(self) -> str:
        """Needs validation losses."""
        if not self.names:
            return self.needs
        return "" if self.has_eval() else "no validation loss saved (EVAL mode)"

    def invoke_at_step(self, step):
        """At each validation: steps since the best valid loss vs the fitted patience."""
        if self._epochs is None:
            self._epochs = self.epochs()
        k = next((i for i, e in enumerate(self._epochs) if e[0] == step), None)
        if k is None or k + 1 < 3 * self.min_patience:
            return False
        self.decided = True
        patience = min(self.patience_valid, max(self.min_patience, (k + 1) // 3))
        valid = [v for _, v, _ in self._epochs[: k + 1]]
        best = int(np.argmin(valid))
        rise = valid[-1] - valid[best]
        noise = 2 * noise_sd(valid)
        train = [t for _, _, t in self._epochs[: k + 1]]
        # A real fall, beyond the per-epoch train loss's own noise (at lr 0 it only wanders).
        train_fell = train[best] - train[k] > 2 * noise_sd(train) * np.sqrt(2)
        if k - best >= patience and rise > max(self.delta, noise) and train_fell:
            return self.fire(
                f"valid loss {valid[-1]:.4g} is {rise:.3g} above its best {valid[best]:.4g} (validation {best + 1}) "
                f"{k - best} validations later (patience {patience}) while train loss fell"
            )
        return False

    def insufficient(self) -> str:
        """NotEvaluated reason: too few validations."""
        n = 0 if self._epochs is None else len(self._epochs)
        return "" if self.decided else f"{n} validation(s); needs {3 * self.min_patience}"
