"""`dogclf sagemaker` serving flags (role, a gated export, a wheel, your own container image) and `dockerfile`."""

from __future__ import annotations

import argparse

from dogclf.cli.options import Flag


def serving_flags(**flags: Flag) -> dict[str, Flag]:
    """The command-line fields of a ServingOptions model: `flags` (its own) then role, code and shipping."""
    from dogclf.backends.select import EXPORT_CHOICES

    return {
        "role": Flag(),
        **flags,
        "code_in_model": Flag(),
        "export": Flag(choices=EXPORT_CHOICES),
        "wheel": Flag(),
        "image_uri": Flag("--image", metavar="URI"),
    }


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
