"""examples/batch_transform.py in a subprocess against a moto server: upload and CreateTransformJob go through."""

from __future__ import annotations

import os
import subprocess
import sys

import boto3

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "sagemaker"))  # the shared moto helper lives with the SageMaker tests
from sm_moto import BUCKET, REGION, ROLE, moto_url, recorded, start_recording  # noqa: E402, F401

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


def test_batch_example_against_moto(moto_url, tiny_data, tmp_path):  # noqa: F811
    session = boto3.session.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    s3 = session.client("s3", endpoint_url=moto_url)
    try:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    start_recording(moto_url)
    model_data = f"s3://{BUCKET}/dogclf/output/job/output/model.tar.gz"  # used as is: never downloaded
    args = [
        "--role",
        ROLE,
        "--model-data",
        model_data,
        "--bucket",
        BUCKET,
        "--region",
        REGION,
        "--endpoint-url",
        moto_url,
        "--images",
        str(tiny_data / "test"),
        "--poll-seconds",
        "0.5",
        "--instance-count",
        "2",
        "--output",
        str(tmp_path / "p.csv"),
    ]
    env = {**os.environ, **AWS, "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_PROFILE", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "batch_transform.py"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    images = sorted(
        p.relative_to(tiny_data / "test").as_posix() for p in (tiny_data / "test").rglob("*") if p.is_file()
    )
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="dogclf/batch/images/").get("Contents", [])
    assert sorted(o["Key"].removeprefix("dogclf/batch/images/") for o in listed) == images
    (job,) = recorded(moto_url, "CreateTransformJob")
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/dogclf/batch/images/"
    assert job["TransformInput"]["ContentType"] == "application/x-image"
    assert job["TransformOutput"] == {"S3OutputPath": f"s3://{BUCKET}/dogclf/batch/out/", "Accept": "application/json"}
    assert job["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 2}
    (model,) = recorded(moto_url, "CreateModel")
    assert model["PrimaryContainer"]["ModelDataUrl"] == model_data
    assert model["PrimaryContainer"]["Environment"]["DOGCLF_TOPK"] == "3"
    notices = [line for line in proc.stdout.splitlines() if line.startswith("[skipped]")]
    assert notices == [
        f"[skipped] read the results: no .out objects under s3://{BUCKET}/dogclf/batch/out/, so the job ran nothing"
    ], proc.stdout
    assert not (tmp_path / "p.csv").exists() and proc.stdout.rstrip().endswith("done")
