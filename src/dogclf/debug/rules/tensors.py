"""Rules on tensors: VanishingGradient, ExplodingTensor, PoorWeightInitialization, DeadRelu, AllZero."""

from __future__ import annotations

import numpy as np
from smdebug.core.modes import ModeKeys

from dogclf.debug.rules._common import DogclfRule, _bool, _list, _LossRule


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
