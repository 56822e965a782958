"""Batch Transform: top-k breeds for a folder of images with a model in S3, no endpoint, as one CSV.

1. upload the images to s3://BUCKET/PREFIX/batch/images/
2. start a transform job: the deploy model (same container and handlers), one request per image
3. wait for it to end
4. read the .out files (one JSON answer per image) into predictions.csv, the columns of `dogclf predict`

python examples/batch_transform.py --role arn:aws:iam::123456789012:role/SageMakerRole \\
    --model-data s3://my-bucket/dogclf/output/JOB/output/model.tar.gz [--images path/to/images] \\
    [--bucket my-bucket] --region us-west-2

MODEL_DATA is a dogclf training job's model.tar.gz (or `dogclf package` output): it holds its serving
code, so it is used as is. This starts paid AWS resources (--instance-count instances for the job's duration).
With --endpoint-url every AWS client talks to that URL instead, e.g. a moto server on 127.0.0.1: the upload
and the job request go through, and reading the results is skipped with a notice, because the job ran nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dogclf
import dogclf.sagemaker as sm
from dogclf.errors import DogclfError
from dogclf.prediction_table import predictions_csv


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--role", required=True, help="IAM role ARN that the transform job runs as")
    p.add_argument("--model-data", required=True, help="s3://.../model.tar.gz of a dogclf training job")
    p.add_argument("--images", type=Path, help="local folder of images; default: a generated sample")
    p.add_argument("--bucket", help="S3 bucket for images and results (default: sagemaker-REGION-ACCOUNT, created)")
    p.add_argument("--region", help="AWS region (default: the boto3 configuration)")
    p.add_argument("--endpoint-url", help="one URL for every AWS client, e.g. a moto server http://127.0.0.1:5000")
    p.add_argument("--prefix", default="dogclf", help="key prefix inside the bucket (default dogclf)")
    p.add_argument("--instance-type", default="ml.m5.large")
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--topk", type=int, default=3, help="breeds per image (default 3)")
    p.add_argument("--output", type=Path, default=Path("predictions.csv"), help="CSV to write")
    p.add_argument("--poll-seconds", type=float, default=30.0, help="how often to check on the job")
    return p.parse_args(argv)


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def images_folder(args: argparse.Namespace) -> Path:
    """--images, or the test split of a small generated sample (3 breeds, 64 px)."""
    if args.images is not None:
        return args.images
    root = args.output.parent / "batch-sample" / "dogs"
    if not root.is_dir():
        dogclf.make_dataset(root, classes=3, per_class=8, size=64, eval_per_class=2)
    return root / "test"


def upload(conn: sm.Connection, folder: Path) -> str:
    """Sync the images to s3://bucket/prefix/batch/images/ (unchanged files skipped on a rerun)."""
    uri = conn.s3_uri("batch", "images") + "/"
    result = sm.upload_folder(folder, uri, client=conn.s3_client())
    print(f"  {uri}: {len(result.transferred)} uploaded, {len(result.skipped)} unchanged")
    return uri


def transform(conn: sm.Connection, args: argparse.Namespace, images: str, output: str) -> str:
    """Start the job with the model's own code (no repack) and wait for it to end."""
    options = sm.TransformOptions(
        role=args.role,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        topk=args.topk,
        code_in_model=True,
    )
    name = sm.batch_transform(conn, args.model_data, images, output, options)
    print(f"  transform job {name}: {args.instance_count} x {args.instance_type}, top {args.topk}, -> {output}")
    desc = sm.wait_for(conn, "transform", name, args.poll_seconds, progress=lambda s: print(f"  {name}: {s}"))
    if desc["TransformJobStatus"] != "Completed":
        raise sm.SageMakerError(f"transform job {name} ended {desc['TransformJobStatus']}: {desc.get('FailureReason')}")
    return name


def results(conn: sm.Connection, args: argparse.Namespace, images: str, output: str) -> None:
    """The .out files as one CSV; images without an answer are error rows."""
    client = conn.s3_client()
    if not any(key.endswith(".out") for key in sm.list_keys(output, client)):
        print(f"[skipped] read the results: no .out objects under {output}, so the job ran nothing", flush=True)
        return
    rows = sm.batch_results(output, images, client=client)
    args.output.write_text(predictions_csv(rows, args.topk), encoding="utf-8")
    for row in rows[:5]:
        pairs = zip(row.labels, row.probabilities, strict=True)
        print(f"  {row.path}: {row.error or ', '.join(f'{label} {p:.3f}' for label, p in pairs)}")
    print(f"  {len(rows)} predictions in {args.output}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        conn = sm.connect(args.bucket, args.region, args.endpoint_url, args.prefix)
        print(f"S3: {conn.s3_uri()}  region: {conn.region}  endpoint URL: {args.endpoint_url or 'AWS default'}")
        step("1. upload the images")
        images = upload(conn, images_folder(args))
        output = conn.s3_uri("batch", "out") + "/"
        step("2-3. transform job")
        transform(conn, args, images, output)
        step("4. results as CSV")
        results(conn, args, images, output)
    except DogclfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\ndone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
