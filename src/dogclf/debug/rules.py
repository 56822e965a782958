"""Debugger-style rules on `smdebug.rules.Rule`, with the parameters and defaults of AWS's built-in rules.

Each rule takes the name of the AWS rule it mirrors. Self-contained (smdebug + numpy only, no dogclf imports)
so this file can be uploaded as a SageMaker `Rule.custom` source. Parameters may arrive as strings (SageMaker
passes rule parameters as text). Each rule sets `finding` when it fires and carries a one-line `explanation`
and `advice` for reports.
"""

from __future__ import annotations

import numpy as np
from smdebug.core.modes import ModeKeys
from smdebug.exceptions import TensorUnavailable, TensorUnavailableForStep
from smdebug.rules.rule import Rule

_MODES = {name: getattr(ModeKeys, name) for name in ("TRAIN", "EVAL", "PREDICT", "GLOBAL")}


def _list(value) -> list[str]:
    """A list of strings from None, a list or a comma-separated string."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [s.strip() for s in items if s and s.strip() and s.strip().lower() != "none"]


def _bool(value) -> bool:
    return value.strip().lower() in ("1", "true", "yes") if isinstance(value, str) else bool(value)


class DogclfRule(Rule):
    """Base: tensor lookup by collections and regexes, values that may be missing, and a finding."""

    explanation = ""
    advice = ""
    needs = ""  # what is missing when `names` is empty

    def __init__(self, base_trial) -> None:
        super().__init__(base_trial, action_str="")
        self.finding = ""
        self.names: list[str] = []

    def tensors(self, collections=(), regexes=()) -> list[str]:
        """Names in any of `collections` (those that exist) or matching any of `regexes`."""
        trial, names = self.base_trial, set()
        known = trial.collections()
        for c in collections:
            if c in known:
                names |= set(trial.tensor_names(collection=c))
        if regexes:
            names |= set(trial.tensor_names(regex=list(regexes)))
        return sorted(names)

    def value(self, name: str, step: int, mode=ModeKeys.GLOBAL) -> np.ndarray | None:
        """The tensor's value at `step` (of `mode`), or None when it was not saved then."""
        try:
            return np.asarray(self.base_trial.tensor(name).value(step, mode=mode))
        except (TensorUnavailableForStep, TensorUnavailable):
            return None

    def mode_of(self, step: int):
        """The mode (TRAIN, EVAL...) global `step` was saved in."""
        return self.base_trial.mode(step)

    def fire(self, finding: str) -> bool:
        """Record what triggered the rule and report it."""
        self.finding = finding
        return True

    def missing(self) -> str:
        """What tensors the rule needs and the trial lacks ('' when it can run)."""
        return "" if self.names else self.needs


class VanishingGradient(DogclfRule):
    """Fires when the mean absolute value of a gradient drops below `threshold`."""

    explanation = "Gradients became vanishingly small, so the layers stop learning."
    advice = "Use a larger learning rate, check the initialization, add normalization or residual connections."
    needs = "no gradients saved (collection 'gradients')"

    def __init__(self, base_trial, threshold=0.0000001) -> None:
        super().__init__(base_trial)
        self.threshold, self.names = float(threshold), self.tensors(["gradients"])

    def invoke_at_step(self, step):
        """Fire on the first gradient whose mean absolute value is below the threshold."""
        for name in self.names:
            v = self.value(name, step)
            if v is not None and v.size and np.isfinite(v).all() and float(np.abs(v).mean()) < self.threshold:
                return self.fire(f"mean |{name}| = {float(np.abs(v).mean()):.3g} < {self.threshold:g}")
        return False


class ExplodingTensor(DogclfRule):
    """Fires when a saved tensor holds NaN (or, unless `only_nan`, infinite) values."""

    explanation = "Tensors hold NaN or infinite values: training diverged."
    advice = "Lower the learning rate, clip gradients (--grad-clip), check inputs and the loss for invalid values."

    def __init__(self, base_trial, collection_names=None, tensor_regex=None, only_nan=False) -> None:
        super().__init__(base_trial)
        self.collection_names, self.tensor_regex = _list(collection_names), _list(tensor_regex)
        self.only_nan, self.names, self.needs = _bool(only_nan), self._names(), "no tensors saved"

    def _names(self) -> list[str]:
        if self.collection_names or self.tensor_regex:
            return self.tensors(self.collection_names, self.tensor_regex)
        return self.base_trial.tensor_names()

    def invoke_at_step(self, step):
        """Fire on the first floating-point tensor holding NaN (or infinite) values."""
        for name in self._names():
            v = self.value(name, step)
            if v is None or not np.issubdtype(v.dtype, np.floating):
                continue
            bad = np.isnan(v) if self.only_nan else ~np.isfinite(v)
            if bad.any():
                return self.fire(f"{name} has {int(bad.sum())} non-finite value(s) of {v.size}")
        return False


class _LossRule(DogclfRule):
    """Loss tensors: the 'losses' collection plus `collection_names` and `tensor_regex`."""

    needs = "no loss tensors saved (collection 'losses')"

    def loss_names(self, collection_names=(), tensor_regex=(), use_losses_collection=True) -> list[str]:
        """Saved loss tensors from these collections and regexes, plus 'losses' unless turned off."""
        collections = [*collection_names, *(["losses"] if use_losses_collection else [])]
        return self.tensors(collections, tensor_regex)

    def loss_at(self, names: list[str], step: int) -> float | None:
        """Mean of the loss tensors saved at global `step`, or None."""
        values = [self.value(n, step) for n in names]
        values = [float(np.mean(v)) for v in values if v is not None and v.size]
        return float(np.mean(values)) if values else None

    def series(self, names: list[str], mode) -> list[tuple[int, float]]:
        """(mode step, loss) pairs of `mode`, in order."""
        steps = sorted({s for n in names for s in self.base_trial.tensor(n).steps(mode=mode)})
        out = []
        for s in steps:
            values = [self.value(n, s, mode) for n in names]
            values = [float(np.mean(v)) for v in values if v is not None and v.size]
            if values:
                out.append((s, float(np.mean(values))))
        return out


class LossNotDecreasing(_LossRule):
    """Fires when the loss stalls for `patience` windows, or rises `increase_threshold_percent` % above its start.

    Window: the mean of `num_steps` saved values. Stalled: the mean of the last `patience` windows is not
    `diff_percent` % below that of the `patience` before, so one noisy window never decides; not checked once
    the loss fell below `progress_percent` % of its first value (converging, not stuck). Diverged: a window
    more than `increase_threshold_percent` % above the first loss, even if it recovers later. Without `mode`,
    the first of EVAL, TRAIN, GLOBAL with two full windows is checked.
    """

    explanation = "The loss is not decreasing (the model is not learning) or rose far above its start (diverged)."
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
        progress_percent=50.0,
    ) -> None:
        super().__init__(base_trial)
        self.names = self.loss_names(_list(collection_names), _list(tensor_regex), _bool(use_losses_collection))
        self.num_steps, self.patience = int(num_steps), int(patience)
        self.diff_percent = float(diff_percent) if str(diff_percent).strip().lower() not in ("", "none") else 0.0
        self.increase, self.progress = float(increase_threshold_percent), float(progress_percent)
        self.mode = None if mode in (None, "", "None") else _MODES[str(mode).upper()]
        self._series: list[tuple[int, float]] | None = None
        self.windows: list[float] = []

    def _pick(self) -> list[tuple[int, float]]:
        modes = [self.mode] if self.mode is not None else [ModeKeys.EVAL, ModeKeys.TRAIN, ModeKeys.GLOBAL]
        for mode in modes:
            series = self.series(self.names, mode)
            if series and series[-1][0] - series[0][0] + 1 >= 2 * self.num_steps:
                self._mode = mode
                return series
        self._mode = modes[-1]
        return []

    def _window(self, step) -> float | None:
        """The mean loss of the window ending at global `step`, when a window of the picked mode ends there."""
        if self._series is None:
            self._series = self._pick()
        if not self._series or self.mode_of(step) != self._mode and self._mode != ModeKeys.GLOBAL:
            return None
        mode_step = self.base_trial.mode_step(step) if self._mode != ModeKeys.GLOBAL else step
        n, start = self.num_steps, self._series[0][0]
        if (mode_step - start + 1) % n:
            return None
        values = [v for s, v in self._series if mode_step - n < s <= mode_step]
        return float(np.mean(values)) if values else None

    def invoke_at_step(self, step):
        """At each window's end: fire on divergence from the first loss, or on a stalled trend."""
        mean = self._window(step)
        if mean is None:
            return False
        start = self._series[0][1]  # the loss before the first update
        if not np.isfinite(mean) or mean > start * (1 + self.increase / 100):
            return self.fire(f"mean loss {mean:.4g} over {self.num_steps} steps rose far above its start {start:.4g}")
        self.windows.append(mean)
        p, w = self.patience, self.windows
        if len(w) < 2 * p or min(w) <= start * self.progress / 100:
            return False
        recent, before = float(np.mean(w[-p:])), float(np.mean(w[-2 * p : -p]))
        # A change below float32 resolution is no decrease.
        if not recent < before * (1 - self.diff_percent / 100) - 1e-6 * abs(before):
            return self.fire(f"mean loss {recent:.4g} over the last {p * self.num_steps} steps vs {before:.4g} before")
        return False


class Overfit(_LossRule):
    """Fires when valid loss stops improving while above the smoothed train loss by `ratio_threshold` and `min_gap`.

    Smoothed: the mean of the TRAIN losses since the previous validation. Only a validation that does not beat
    the best valid loss so far counts (a gap that shrinks as valid loss falls is early training, not
    memorizing), and it fires after `patience` such validations in a row, so one noisy validation never decides.
    """

    explanation = "Validation loss is well above training loss: the model memorizes the training set."
    advice = "Add data or augmentation, regularize (weight decay, dropout), freeze more layers, stop earlier."

    def __init__(self, base_trial, tensor_regex=None, start_step=0, patience=1, ratio_threshold=0.1, min_gap=0.0):
        super().__init__(base_trial)
        self.names = self.loss_names((), _list(tensor_regex), not _list(tensor_regex))
        self.start_step, self.patience, self.ratio = int(start_step), int(patience), float(ratio_threshold)
        self.min_gap = float(min_gap)
        self.train: list[float] = []
        self.count, self.best = 0, np.inf

    def missing(self) -> str:
        """Needs saved loss tensors with validation (EVAL) steps among them."""
        if not self.names:
            return "no loss tensors saved (collection 'losses')"
        has_eval = any(self.base_trial.tensor(n).steps(mode=ModeKeys.EVAL) for n in self.names)
        return "" if has_eval else "no validation loss saved (EVAL mode)"

    def invoke_at_step(self, step):
        """Collect TRAIN losses; at each validation compare its loss with their mean."""
        loss, mode = self.loss_at(self.names, step), self.mode_of(step)
        if loss is None or step < self.start_step:
            return False
        if mode == ModeKeys.TRAIN:
            self.train.append(loss)
            return False
        if mode != ModeKeys.EVAL or not self.train:
            return False
        train, self.train = float(np.mean(self.train)), []
        ratio = (loss - train) / max(abs(train), 1e-12)
        improved, self.best = loss < self.best, min(self.best, loss)
        self.count = self.count + 1 if ratio > self.ratio and loss - train > self.min_gap and not improved else 0
        if self.count >= self.patience:
            return self.fire(
                f"valid loss {loss:.4g} vs train loss {train:.4g}: ratio {ratio:.3g} > {self.ratio:g} "
                f"in {self.count} validation(s) in a row"
            )
        return False


class Overtraining(_LossRule):
    """Fires when valid loss stalls (no `delta` gain in `patience_validation` validations) as train loss improves.

    Train loss still improves: it gained `delta` within the last `patience_train` saved TRAIN steps.
    """

    explanation = "Validation loss stopped improving while training loss keeps falling: training too long."
    advice = "Enable early stopping (--early-stopping-patience) and keep the best checkpoint (done by default)."

    def __init__(self, base_trial, patience_train=5, patience_validation=10, delta=0.1) -> None:
        super().__init__(base_trial)
        self.names = self.loss_names()
        self.patience_train, self.patience_valid = int(patience_train), int(patience_validation)
        self.delta = float(delta)
        self.best = {ModeKeys.TRAIN: np.inf, ModeKeys.EVAL: np.inf}
        self.since = {ModeKeys.TRAIN: 0, ModeKeys.EVAL: 0}

    def invoke_at_step(self, step):
        """Track steps since each mode's best loss; fire once validation has stalled and training has not."""
        loss, mode = self.loss_at(self.names, step), self.mode_of(step)
        if loss is None or mode not in self.best:
            return False
        if loss < self.best[mode] - self.delta:
            self.best[mode], self.since[mode] = loss, 0
        else:
            self.since[mode] += 1
        if mode == ModeKeys.EVAL and self.since[ModeKeys.EVAL] >= self.patience_valid:
            if self.since[ModeKeys.TRAIN] < self.patience_train:
                return self.fire(
                    f"valid loss has not improved by {self.delta:g} for {self.since[mode]} validations "
                    f"(best {self.best[mode]:.4g}) while train loss still improves"
                )
        return False


class PoorWeightInitialization(_LossRule):
    """Fires on badly scaled activations or gradients, or a stuck loss, in the first `steps` TRAIN steps.

    Badly scaled: activation-input variance ratio across layers above `threshold`, or a 5th-95th percentile
    gradient spread below `distribution_range`; stuck: the first 2 x `patience` losses do not move at all (range
    under 0.1% of their mean), the mark of outputs that ignore the input. A loss that rises or falls is
    learning at some rate, which is the learning rate's business, not the initialization's.
    """

    explanation = "Weights look poorly initialized: layer activations or gradients are badly scaled."
    advice = "Use the architecture's default (Kaiming/Xavier) init or pretrained weights; do not zero-init layers."

    def __init__(
        self,
        base_trial,
        activation_inputs_regex=".*relu_input",
        threshold=10.0,
        distribution_range=0.001,
        patience=5,
        steps=10,
    ) -> None:
        super().__init__(base_trial)
        self.activations = self.tensors(["relu_input"], _list(activation_inputs_regex))
        self.gradients = self.tensors(["gradients"])
        self.losses = self.loss_names()
        self.threshold, self.range = float(threshold), float(distribution_range)
        self.patience, self.steps = int(patience), int(float(steps))
        self.train_losses: list[float] = []

    def missing(self) -> str:
        """Needs activation inputs or gradients."""
        if self.activations or self.gradients:
            return ""
        return "no activation inputs (collection 'relu_input') or gradients saved"

    def invoke_at_step(self, step):
        """Check activation variances, gradient spread and loss progress at an early TRAIN step."""
        if self.mode_of(step) != ModeKeys.TRAIN or self.base_trial.mode_step(step) >= self.steps:
            return False
        variances = [float(np.var(v)) for v in (self.value(n, step) for n in self.activations) if v is not None]
        if len(variances) > 1:
            low, high = min(variances), max(variances)
            if low <= 0 or high / low > self.threshold:
                return self.fire(
                    f"activation variance {low:.3g}..{high:.3g} across layers (ratio > {self.threshold:g})"
                )
        grads = [v.ravel() for v in (self.value(n, step) for n in self.gradients) if v is not None and v.size]
        if grads:
            p5, p95 = np.percentile(np.concatenate(grads), [5, 95])
            if p95 - p5 < self.range:
                return self.fire(f"gradients' 5th-95th percentile spread {p95 - p5:.3g} < {self.range:g}")
        loss = self.loss_at(self.losses, step)
        self.train_losses += [] if loss is None else [loss]
        window = self.train_losses[: 2 * self.patience]
        if len(window) == 2 * self.patience and np.ptp(window) <= 1e-3 * max(abs(float(np.mean(window))), 1e-12):
            return self.fire(f"loss stuck at {np.mean(window):.4g} over the first {len(window)} saved steps")
        return False


class DeadRelu(DogclfRule):
    """Fires when more than `threshold_layer` % of a ReLU layer's units are dead.

    Dead: active in under `threshold_inactivity` % of their inputs. Units are the channels of conv maps and
    the features of vectors.
    """

    explanation = "Many ReLU units never activate (dead ReLUs), so they pass no gradient."
    advice = "Lower the learning rate, use a better initialization, or try LeakyReLU."
    needs = "no ReLU outputs saved (collection 'relu_output')"

    def __init__(self, base_trial, tensor_regex=None, threshold_inactivity=1.0, threshold_layer=50.0) -> None:
        super().__init__(base_trial)
        self.names = self.tensors(["relu_output"], _list(tensor_regex))
        self.inactivity, self.layer = float(threshold_inactivity), float(threshold_layer)

    def invoke_at_step(self, step):
        """Fire on the first ReLU output with too many dead units."""
        for name in self.names:
            v = self.value(name, step)
            if v is None or v.ndim < 2:
                continue
            active = np.moveaxis(v > 0, 1, 0).reshape(v.shape[1], -1).mean(axis=1) * 100
            dead = float((active < self.inactivity).mean() * 100)
            if dead > self.layer:
                return self.fire(f"{name}: {dead:.0f}% of units dead (> {self.layer:g}%)")
        return False


class AllZero(DogclfRule):
    """Fires when at least `threshold` % of a tensor's values are zero (needs collections or a regex)."""

    explanation = "Tensors are entirely zero: a layer's output or gradient carries no signal."
    advice = "Check for zero-initialized layers, dead activations, or a disconnected part of the graph."

    def __init__(self, base_trial, collection_names=None, tensor_regex=None, threshold=100.0) -> None:
        super().__init__(base_trial)
        self.names = self.tensors(_list(collection_names), _list(tensor_regex))
        asked = bool(_list(collection_names) or _list(tensor_regex))
        self.needs = "none of the requested tensors were saved" if asked else "set collection_names or tensor_regex"
        self.threshold = float(threshold)

    def invoke_at_step(self, step):
        """Fire on the first tensor whose share of zeros reaches the threshold."""
        for name in self.names:
            v = self.value(name, step)
            if v is not None and v.size and float((v == 0).mean() * 100) >= self.threshold:
                return self.fire(f"{name}: {float((v == 0).mean() * 100):.0f}% zeros")
        return False


class ClassImbalance(DogclfRule):
    """Fires when classes are imbalanced, or a class is mostly mispredicted.

    Imbalanced: the largest class has more than `threshold_imbalance` times the samples of the smallest (from
    a saved class-count tensor, else from `samples` labels). Mispredicted: a class's misprediction fraction
    over the latest `samples` TRAIN labels exceeds `threshold_misprediction` (the first, untrained steps leave
    the window as training goes on).
    """

    explanation = "Classes are imbalanced, or under-represented classes are mostly mispredicted."
    advice = "Collect more images of small classes, or use a weighted loss or a class-balanced sampler."

    def __init__(
        self,
        base_trial,
        threshold_imbalance=10,
        threshold_misprediction=0.7,
        samples=500,
        argmax=False,
        labels_regex=".*labels",
        predictions_regex=".*predictions",
        counts_regex=".*class_counts",
    ) -> None:
        super().__init__(base_trial)
        self.imbalance, self.misprediction = float(threshold_imbalance), float(threshold_misprediction)
        self.samples, self.argmax = int(samples), _bool(argmax)
        self.labels = self.tensors(["labels"], _list(labels_regex))
        self.predictions = self.tensors(["predictions"], _list(predictions_regex))
        self.counts = self.tensors(["dataset"], _list(counts_regex))
        self.seen: list[tuple[int, bool]] = []  # (label, mispredicted) of the latest `samples` TRAIN labels

    def missing(self) -> str:
        """Needs saved class counts or labels."""
        return "" if self.counts or self.labels else "no class counts or labels saved (collections 'dataset', 'labels')"

    def _ratio(self, counts) -> float:
        counts = np.asarray(counts, dtype=float)
        return float("inf") if counts.min() <= 0 else float(counts.max() / counts.min())

    def invoke_at_step(self, step):
        """Check the saved class counts, then the latest labels and predictions."""
        for name in self.counts:
            v = self.value(name, step)
            if v is not None and v.size > 1 and self._ratio(v) > self.imbalance:
                counts = v.astype(int).tolist()
                return self.fire(f"class counts {counts}: ratio {self._ratio(v):.3g} > {self.imbalance:g}")
        if self.mode_of(step) != ModeKeys.TRAIN or not self.labels:
            return False
        labels = self.value(self.labels[0], step)
        if labels is None:
            return False
        preds = self.value(self.predictions[0], step) if self.predictions else None
        preds = preds.argmax(axis=-1) if preds is not None and self.argmax else preds
        wrong = (
            np.zeros(labels.size, bool) if preds is None else preds.astype(int).ravel() != labels.astype(int).ravel()
        )
        self.seen = [*self.seen, *zip(labels.astype(int).ravel().tolist(), wrong.tolist(), strict=True)]
        self.seen = self.seen[-self.samples :]
        return len(self.seen) >= self.samples and self._check_seen(preds is not None)

    def _check_seen(self, predicted: bool) -> bool:
        """Fire on the label counts (without saved class counts) or a mostly mispredicted class in the window."""
        classes = sorted({y for y, _ in self.seen})
        n = {y: sum(1 for c, _ in self.seen if c == y) for y in classes}
        if not self.counts and self._ratio(list(n.values())) > self.imbalance:
            return self.fire(f"label counts {n}: imbalance > {self.imbalance:g}")
        for y in classes if predicted else ():
            wrong = sum(1 for c, w in self.seen if c == y and w)
            if wrong / n[y] > self.misprediction:
                return self.fire(
                    f"class {y}: {wrong}/{n[y]} of the latest labels mispredicted (> {self.misprediction:g})"
                )
        return False


_ORDER = (VanishingGradient, ExplodingTensor, LossNotDecreasing, Overfit, Overtraining, PoorWeightInitialization)
RULES: dict[str, type[DogclfRule]] = {cls.__name__: cls for cls in (*_ORDER, DeadRelu, AllZero, ClassImbalance)}
