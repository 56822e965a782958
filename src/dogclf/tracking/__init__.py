"""Experiment tracking: TensorBoard event files (on by default) and MLflow runs (optional, `dogclf[mlflow]`).

`config` is light (pydantic only); `callbacks` builds the Trainer callbacks the config enables, and the
tensorboard and mlflow modules import their packages only when a run asks for them.
"""
