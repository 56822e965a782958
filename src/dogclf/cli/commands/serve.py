"""`dogclf serve` (local SageMaker-compatible endpoint) and `dogclf package` (model.tar.gz)."""

from __future__ import annotations

import argparse


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

    values = {name: getattr(args, name) for name in ServeConfig.model_fields if getattr(args, name) is not None}
    try:
        cfg = ServeConfig(**values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "dogclf serve")) from None
    with model_source(args.model) as model_dir:
        read_metadata(model_dir)  # fail fast, as one line, before the server starts
        return serve(model_dir, cfg)


def _package(args: argparse.Namespace) -> int:
    from dogclf.serve.package import package_model

    out = package_model(args.run, args.output, wheel=args.wheel)
    print(f"packaged {args.run} -> {out} ({out.stat().st_size} bytes)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf serve` and `dogclf package`."""
    p = sub.add_parser(
        "serve",
        help="serve a model over HTTP like a SageMaker endpoint (loopback by default)",
        description="Local endpoint: GET /ping, POST /invocations, POST /endpoints/NAME/invocations, "
        "GET /metrics. Stops gracefully on SIGTERM.",
    )
    p.add_argument("model", metavar="MODEL_OR_TARBALL", help="model folder, run folder or model.tar.gz")
    p.add_argument("--host", help="bind address (default 127.0.0.1; 0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, help="port (default 8080; 0 picks a free one and prints it)")
    p.add_argument("--max-batch-size", type=int, help="most images per forward pass (default 16)")
    p.add_argument("--max-batch-delay-ms", type=float, help="longest wait to fill a batch (default 5)")
    p.add_argument(
        "--workers",
        type=int,
        help="model threads running batches concurrently (default: min(4, CPUs) on a CPU, else 1)",
    )
    p.add_argument("--threads", type=int, help="torch intra-op threads of each model thread (default: CPUs / workers)")
    p.add_argument("--decode-threads", type=int, help="threads decoding request images (default: min(4, CPUs))")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="compute device (default auto)")
    p.add_argument(
        "--precision", choices=["auto", "fp32", "bf16", "fp16"], help="auto: bf16 on CPUs with native bf16, else fp32"
    )
    p.add_argument("--max-body-bytes", type=int, help="request body limit (default 6 MB, as SageMaker)")
    p.add_argument("--max-pixels", type=int, help="decoded image limit, width x height (default 25,000,000)")
    p.add_argument("--max-images-per-request", type=int, help="images in one request (default 32; 413 beyond)")
    p.add_argument("--max-queue-images", type=int, help="queued images before answering 503 (default 256)")
    p.add_argument("--timeout-s", type=float, help="per-request deadline in seconds (default 60)")
    p.add_argument(
        "--max-request-pixels",
        type=int,
        help="pixels of all images in one request, read from headers (default 100,000,000; 413 beyond)",
    )
    p.add_argument(
        "--max-connections", type=int, help="open connections at once; requests beyond get 503 (default 256)"
    )
    p.add_argument("--keep-alive-s", type=float, help="idle seconds before a keep-alive connection closes (default 5)")
    p.add_argument(
        "--header-timeout-s", type=float, help="seconds a connection has to send a complete request head (default 10)"
    )
    p.add_argument("--max-header-bytes", type=int, help="largest request line plus headers (default 16384)")
    p.add_argument("--default-topk", type=int, help="classes per image when a request names no k (default 5)")
    p.add_argument(
        "--min-confidence",
        type=float,
        help='answer "unknown" for an image whose top calibrated probability is below this (default 0)',
    )
    p.add_argument(
        "--raw-scores", action="store_true", default=None, help="ignore the model's fitted temperature (T=1)"
    )
    p.set_defaults(func=_serve)

    p = sub.add_parser(
        "package",
        help="build model.tar.gz for a SageMaker PyTorch endpoint",
        description="Reproducible model.tar.gz: model.pth, metadata.json, code/inference.py, code/requirements.txt.",
    )
    p.add_argument("run", metavar="RUN_OR_MODEL", help="run folder or model folder")
    p.add_argument("-o", "--output", default="model.tar.gz", help="archive to write (default model.tar.gz)")
    p.add_argument("--wheel", help="bundle this dogclf wheel in code/ and install it instead of dogclf==VERSION")
    p.set_defaults(func=_package)
