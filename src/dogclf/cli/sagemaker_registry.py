"""`dogclf sagemaker register` and `approve` (the Model Registry), and the AWS options every action shares."""

from __future__ import annotations

import argparse
import os

from dogclf.cli.options import Flag, add_model_options, model_values
from dogclf.sagemaker.registry import RegisterOptions

REGISTER_FLAGS = {"group": Flag(), "evaluation": Flag(), "approval": Flag(), "description": Flag()}


def connection(args: argparse.Namespace, needs_bucket: bool = True):
    """The dogclf Connection of the action's --bucket, --region, --endpoint-url and --prefix."""
    from dogclf.sagemaker import connect

    return connect(args.bucket, args.region, args.endpoint_url, args.prefix, needs_bucket=needs_bucket)


def add_aws_options(p: argparse.ArgumentParser) -> None:
    """Add --bucket, --prefix, --region and --endpoint-url."""
    p.add_argument(
        "--bucket",
        default=os.environ.get("DOGCLF_S3_BUCKET"),
        help="S3 bucket for code, data, outputs (default: $DOGCLF_S3_BUCKET, else the SageMaker default bucket "
        "sagemaker-REGION-ACCOUNT, created if missing)",
    )
    p.add_argument("--prefix", default="dogclf", help="key prefix inside the bucket")
    p.add_argument("--region", help="AWS region (default: the boto3 configuration)")
    p.add_argument("--endpoint-url", help="AWS endpoint URL (e.g. a local emulator such as moto)")


def _register_model(args: argparse.Namespace) -> int:
    from dogclf.sagemaker import register_model

    options = RegisterOptions(**model_values(args, RegisterOptions, REGISTER_FLAGS))
    print(f"model package: {register_model(connection(args), args.model_data, options)} ({options.approval})")
    return 0


def _approve(args: argparse.Namespace) -> int:
    from dogclf.sagemaker import set_approval

    status = "Rejected" if args.reject else "Approved"
    set_approval(connection(args), args.arn, status, args.description)
    print(f"model package: {args.arn} ({status})")
    return 0


def add_registry_actions(sm: argparse._SubParsersAction) -> None:
    """Add `register` and `approve` (the SageMaker Model Registry)."""
    t = sm.add_parser(
        "register",
        help="register a model.tar.gz in the Model Registry, with its evaluation",
        description="Create the model package group if missing and a model package: the PyTorch inference image "
        "and MODEL_DATA (its own code/, as a dogclf training job writes it), dogclf's request and response types, "
        "the instance types, and ModelMetrics pointing at the evaluation JSON uploaded beside MODEL_DATA.",
    )
    t.add_argument("model_data", help="s3://.../model.tar.gz (a training job's model artifact)")
    add_model_options(t, RegisterOptions, REGISTER_FLAGS)
    add_aws_options(t)
    t.set_defaults(func=_register_model)

    t = sm.add_parser("approve", help="approve (or reject) a model package")
    t.add_argument("arn", help="model package ARN")
    t.add_argument("--reject", action="store_true", help="set Rejected instead of Approved")
    t.add_argument("--description", help="why (the package's approval description)")
    add_aws_options(t)
    t.set_defaults(func=_approve)
