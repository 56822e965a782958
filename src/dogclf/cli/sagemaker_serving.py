"""`dogclf sagemaker` options for what a model serves: a gated export, a wheel, your own container image."""

from __future__ import annotations

import argparse
from typing import Any


def add_shipping_options(p: argparse.ArgumentParser) -> None:
    """--export, --wheel and --image for deploy and batch-predict."""
    from dogclf.backends.select import EXPORT_CHOICES

    p.add_argument(
        "--export",
        choices=EXPORT_CHOICES,
        help="serve this export (DOGCLF_BACKEND): a local MODEL is packaged with it (as `dogclf package --export`) "
        "and uploaded; an s3:// MODEL must already hold it",
    )
    p.add_argument("--wheel", help="with a local MODEL: bundle this dogclf wheel instead of installing dogclf==VERSION")
    p.add_argument(
        "--image",
        metavar="URI",
        help="serve in this image (built from `dogclf sagemaker dockerfile`) instead of SageMaker's PyTorch container",
    )


def shipping_values(args: argparse.Namespace) -> dict[str, Any]:
    """The ServingOptions fields the shipping options set."""
    return {"export": args.export, "wheel": args.wheel, "image_uri": args.image}


def _dockerfile(args: argparse.Namespace) -> int:
    from dogclf.sagemaker.byoc import write_build_context

    path = write_build_context(args.output, args.wheel, args.base_image)
    print(f"wrote {path}; build and push it, then: dogclf sagemaker deploy MODEL --image URI ...")
    return 0


def register_dockerfile(sm: argparse._SubParsersAction) -> None:
    """Add `dockerfile`."""
    from dogclf.sagemaker.byoc import BASE_IMAGE

    t = sm.add_parser(
        "dockerfile",
        help="write a Dockerfile for your own serving container (dogclf serve, dynamic batching, OpenVINO)",
        description="Write OUTPUT/Dockerfile: a PyTorch CPU base, dogclf[serve,openvino] and an entry that runs "
        "`dogclf serve` as SageMaker starts a container (`serve`, port 8080, the model in /opt/ml/model).",
    )
    t.add_argument("-o", "--output", default="container", help="folder to write (default container)")
    t.add_argument(
        "--wheel", help="install this dogclf wheel (copied beside the Dockerfile) instead of dogclf==VERSION"
    )
    t.add_argument("--base-image", default=BASE_IMAGE, help=f"base image with Python 3.12 (default {BASE_IMAGE})")
    t.set_defaults(func=_dockerfile)
