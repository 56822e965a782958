"""SageMaker PyTorch serving entry point (code/inference.py in model.tar.gz)."""

from dogclf.serve.handlers import input_fn, model_fn, output_fn, predict_fn

__all__ = ["model_fn", "input_fn", "predict_fn", "output_fn"]
