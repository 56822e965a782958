"""Shared parts of the rules: parameter parsing, noise estimates, tensor lookup and the rule base classes.

Like every module of this package it imports only numpy and smdebug, and names from the package's own
modules only in `from dogclf.debug.rules.<module> import ...` lines, so `dogclf.debug.rules_bundle` can join
the modules into the single file that SageMaker runs as `Rule.custom` source.
"""

from __future__ import annotations

import numpy as np
from smdebug.core.modes import ModeKeys
from smdebug.exceptions import TensorUnavailable, TensorUnavailableForStep
from smdebug.rules.rule import Rule

_MODES = {name: getattr(ModeKeys, name) for name in ("TRAIN", "EVAL", "PREDICT", "GLOBAL")}
# The epoch's plain cross-entropy on the training set, saved in EVAL mode next to the validation loss.
TRAIN_EPOCH_LOSS = "train_loss_output_0"
VALID_LOSS = "valid_loss_output_0"


def _list(value) -> list[str]:
    """A list of strings from None, a list or a comma-separated string."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [s.strip() for s in items if s and s.strip() and s.strip().lower() != "none"]


def _bool(value) -> bool:
    return value.strip().lower() in ("1", "true", "yes") if isinstance(value, str) else bool(value)


def noise_sd(values) -> float:
    """Per-step noise of a series: the robust SD of its first differences over sqrt(2); a trend barely moves it."""
    d = np.diff(np.asarray(values, dtype=float))
    if d.size < 2:
        return float("nan")
    mad = float(np.median(np.abs(d - np.median(d))))
    scale = float(np.mean(np.abs(values))) if len(values) else 0.0
    return max(1.4826 * mad / np.sqrt(2), 1e-6 * scale)


class DogclfRule(Rule):
    """Base: tensor lookup by collections and regexes, values that may be missing, a finding, and too-little-data."""

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

    def insufficient(self) -> str:
        """After a run that did not fire: why the rule had too little data to decide ('' when it decided)."""
        return ""


class _LossRule(DogclfRule):
    """Loss tensors: the 'losses' collection plus `collection_names` and `tensor_regex`."""

    needs = "no loss tensors saved (collection 'losses')"

    def loss_names(self, collection_names=(), tensor_regex=(), use_losses_collection=True) -> list[str]:
        """Saved loss tensors from these collections and regexes, plus 'losses' unless turned off.

        The per-epoch training loss (saved next to the validation loss) is left out: it is not a step's loss.
        """
        collections = [*collection_names, *(["losses"] if use_losses_collection else [])]
        return [n for n in self.tensors(collections, tensor_regex) if n != TRAIN_EPOCH_LOSS]

    def loss_at(self, names: list[str], step: int, mode=ModeKeys.GLOBAL) -> float | None:
        """Mean of the loss tensors saved at `step` (of `mode`), or None."""
        values = [self.value(n, step, mode) for n in names]
        values = [float(np.mean(v)) for v in values if v is not None and v.size]
        return float(np.mean(values)) if values else None

    def series(self, names: list[str], mode) -> list[tuple[int, float]]:
        """(mode step, loss) pairs of `mode`, in order."""
        steps = sorted({s for n in names for s in self.base_trial.tensor(n).steps(mode=mode)})
        out = []
        for s in steps:
            loss = self.loss_at(names, s, mode)
            if loss is not None:
                out.append((s, loss))
        return out

    def has_eval(self) -> bool:
        """Whether any validation (EVAL) loss was saved."""
        return any(self.base_trial.tensor(n).steps(mode=ModeKeys.EVAL) for n in self.names)

    def epochs(self) -> list[tuple[int, float, float]]:
        """Per validation: (global step, valid loss, the epoch's train loss), in order.

        The train loss is the plain cross-entropy saved with the validation (like for like); runs without it
        fall back to the mean of the TRAIN losses since the previous validation.
        """
        trial = self.base_trial
        saved = TRAIN_EPOCH_LOSS in trial.tensor_names()
        train = [(trial.global_step(ModeKeys.TRAIN, s), v) for s, v in self.series(self.names, ModeKeys.TRAIN)]
        out, previous = [], -1
        for s, loss in self.series(self.names, ModeKeys.EVAL):
            step = trial.global_step(ModeKeys.EVAL, s)
            t = self.value(TRAIN_EPOCH_LOSS, s, ModeKeys.EVAL) if saved else None
            if t is not None and t.size:
                out.append((step, loss, float(np.mean(t))))
            else:
                between = [v for g, v in train if previous < g < step]
                if between:
                    out.append((step, loss, float(np.mean(between))))
            previous = step
        return out
