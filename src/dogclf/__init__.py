"""dogclf: fine-tune, tune, debug, profile and serve image classifiers, locally and on SageMaker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dogclf.lazy import lazy_exports
from dogclf.version import __version__

# Lazy re-exports keep `import dogclf` fast; torch loads on first use.
_EXPORTS = {
    "RunConfig": "dogclf.config",
    "DataConfig": "dogclf.config",
    "ModelConfig": "dogclf.config",
    "OptimConfig": "dogclf.config",
    "RuntimeConfig": "dogclf.config",
    "build_config": "dogclf.config",
    "create_model": "dogclf.models",
    "list_models": "dogclf.models",
    "train": "dogclf.workflow",
    "evaluate": "dogclf.evaluation",
    "export_model": "dogclf.export",
    "predict": "dogclf.prediction",
    "load_artifact": "dogclf.artifact",
    "make_dataset": "dogclf.data.synthetic",
    "Preprocess": "dogclf.data.preprocess",
    "DogclfError": "dogclf.errors",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from dogclf.artifact import load_artifact
    from dogclf.config import DataConfig, ModelConfig, OptimConfig, RunConfig, RuntimeConfig, build_config
    from dogclf.data.preprocess import Preprocess
    from dogclf.data.synthetic import make_dataset
    from dogclf.errors import DogclfError
    from dogclf.evaluation import evaluate
    from dogclf.export import export_model
    from dogclf.models import create_model, list_models
    from dogclf.prediction import predict
    from dogclf.workflow import train

__getattr__ = lazy_exports(__name__, _EXPORTS)
