"""`dogclf serve` (local SageMaker-compatible endpoint) and `dogclf package` (model.tar.gz)."""

from __future__ import annotations

import argparse

from dogclf.cli.options import add_model_options, model_values


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from dogclf.extras import require

    for module in ("starlette", "uvicorn"):
        require(module, "serve", "dogclf serve needs starlette and uvicorn")

    from dogclf.artifact import read_metadata
    from dogclf.config import format_validation_error
    from dogclf.errors import ConfigError
    from dogclf.serve.config import ServeConfig
    from dogclf.serve.package import model_source
    from dogclf.serve.server import serve

    values = model_values(args, ServeConfig)
    try:
        cfg = ServeConfig(**values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "dogclf serve")) from None
    with model_source(args.model) as model_dir:
        read_metadata(model_dir)  # fail fast, as one line, before the server starts
        return serve(model_dir, cfg)


def _package(args: argparse.Namespace) -> int:
    from dogclf.serve.package import package_model

    out = package_model(args.run, args.output, wheel=args.wheel, export=args.export)
    shipped = f", with export {args.export}" if args.export else ""
    print(f"packaged {args.run} -> {out} ({out.stat().st_size} bytes{shipped})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf serve` and `dogclf package`."""
    p = sub.add_parser(
        "serve",
        help="serve a model over HTTP like a SageMaker endpoint (loopback by default)",
        description="Local endpoint: GET /ping, POST /invocations, POST /endpoints/NAME/invocations, "
        "GET /metrics, and the Open Inference Protocol (KServe v2) under /v2. Stops gracefully on SIGTERM.",
    )
    p.add_argument("model", metavar="MODEL_OR_TARBALL", help="model folder, run folder or model.tar.gz")
    from dogclf.serve.config import ServeConfig

    add_model_options(p, ServeConfig)
    p.set_defaults(func=_serve)

    p = sub.add_parser(
        "package",
        help="build model.tar.gz for a SageMaker PyTorch endpoint",
        description="Reproducible model.tar.gz: model.pth, metadata.json, code/inference.py, code/requirements.txt.",
    )
    p.add_argument("run", metavar="RUN_OR_MODEL", help="run folder or model folder")
    p.add_argument("-o", "--output", default="model.tar.gz", help="archive to write (default model.tar.gz)")
    p.add_argument("--wheel", help="bundle this dogclf wheel in code/ and install it instead of dogclf==VERSION")
    from dogclf.backends.select import EXPORT_CHOICES

    p.add_argument(
        "--export",
        choices=EXPORT_CHOICES,
        help="ship MODEL/exports/NAME (made by `dogclf export`) and install its engine's extra; "
        "the endpoint's auto backend then serves it",
    )
    p.set_defaults(func=_package)
