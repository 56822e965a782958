"""Hyperparameter tuning: one search space for the local Optuna tuner and SageMaker tuning jobs."""
