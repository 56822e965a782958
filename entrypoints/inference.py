"""SageMaker PyTorch serving handlers, for a clone; model.tar.gz ships dogclf/entrypoints/inference.py itself."""

from dogclf.entrypoints.inference import input_fn, model_fn, output_fn, predict_fn

__all__ = ["model_fn", "input_fn", "predict_fn", "output_fn"]
