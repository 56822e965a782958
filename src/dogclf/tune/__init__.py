"""Hyperparameter tuning: one search space for the local Optuna tuner and SageMaker tuning jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dogclf.lazy import lazy_exports

_EXPORTS = {
    "SearchSpace": "dogclf.tune.space",
    "Continuous": "dogclf.tune.space",
    "Integer": "dogclf.tune.space",
    "Categorical": "dogclf.tune.space",
    "default_space": "dogclf.tune.space",
    "load_space": "dogclf.tune.space",
    "tune": "dogclf.tune.study",
    "TuneResult": "dogclf.tune.results",
    "FeatureCache": "dogclf.tune.features",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from dogclf.tune.features import FeatureCache
    from dogclf.tune.results import TuneResult
    from dogclf.tune.space import Categorical, Continuous, Integer, SearchSpace, default_space, load_space
    from dogclf.tune.study import tune

__getattr__ = lazy_exports(__name__, _EXPORTS)
