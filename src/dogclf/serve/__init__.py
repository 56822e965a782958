"""Serving: the ClassifierAPI, SageMaker handlers, the local endpoint server, packaging and clients."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dogclf.lazy import lazy_exports

_EXPORTS = {
    "ClassifierAPI": "dogclf.serve.api",
    "ServeConfig": "dogclf.serve.config",
    "create_app": "dogclf.serve.server",
    "serve": "dogclf.serve.server",
    "package_model": "dogclf.serve.package",
    "extract_model": "dogclf.serve.package",
    "EndpointClient": "dogclf.serve.client",
    "query_local_endpoint": "dogclf.serve.demo",
}

__all__ = [
    "ClassifierAPI",
    "EndpointClient",
    "ServeConfig",
    "create_app",
    "extract_model",
    "package_model",
    "query_local_endpoint",
    "serve",
]

if TYPE_CHECKING:
    from dogclf.serve.api import ClassifierAPI
    from dogclf.serve.client import EndpointClient
    from dogclf.serve.config import ServeConfig
    from dogclf.serve.demo import query_local_endpoint
    from dogclf.serve.package import extract_model, package_model
    from dogclf.serve.server import create_app, serve

__getattr__ = lazy_exports(__name__, _EXPORTS)
