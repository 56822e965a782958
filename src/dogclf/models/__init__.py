"""Model factory over a registry of architectures."""

# Importing the architectures fills the registry.
from dogclf.models import architectures as _architectures
from dogclf.models._registry import ModelSpec, get_spec, list_models, register_model
from dogclf.models.factory import (
    backbone_parameters,
    create_model,
    head_parameters,
    set_head,
    set_trainable,
    static_backbone,
    train_mode,
)

__all__ = [
    "ModelSpec",
    "backbone_parameters",
    "create_model",
    "get_spec",
    "head_parameters",
    "list_models",
    "register_model",
    "set_head",
    "set_trainable",
    "static_backbone",
    "train_mode",
]
