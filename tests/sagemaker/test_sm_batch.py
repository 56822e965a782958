"""Batch Transform against moto (CreateTransformJob captured) and its .out files, made by the real handlers, to CSV."""

from __future__ import annotations

import csv
import importlib.util
import io
import tarfile

import pytest
from sm_moto import BUCKET, REGION, ROLE, aws_env, capture, conn, moto_url  # noqa: F401

import dogclf.sagemaker as sm
from conftest import run_cli
from dogclf.errors import ConfigError
from dogclf.serve.package import extract_model, package_model

IMAGES = f"s3://{BUCKET}/batch/images/"
OUT = f"s3://{BUCKET}/batch/out/"


def _s3(conn):  # noqa: F811
    return conn.session.boto_session.client("s3", endpoint_url=conn.endpoint_url)


def _model_tarball(conn, tiny_run) -> str:  # noqa: F811
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in sorted((tiny_run / "model").iterdir()):
            tar.add(f, arcname=f.name)
    key = "dogclf/output/batch-job/output/model.tar.gz"
    _s3(conn).put_object(Bucket=BUCKET, Key=key, Body=buf.getvalue())
    return f"s3://{BUCKET}/{key}"


def test_transform_job_request_uses_the_deploy_model(conn, tiny_run):  # noqa: F811
    models, jobs = capture(conn, "CreateModel"), capture(conn, "CreateTransformJob")
    opts = sm.TransformOptions(role=ROLE, instance_type="ml.c5.xlarge", instance_count=2, topk=3, job_name="dogs-b")
    assert sm.batch_transform(conn, _model_tarball(conn, tiny_run), IMAGES, OUT, opts, wait=True) == "dogs-b"
    (model,), (job,) = models, jobs
    container = model["PrimaryContainer"]
    assert container["Image"].endswith("pytorch-inference:2.6.0-cpu-py312")  # deploy's image
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["DOGCLF_TOPK"] == "3"
    assert job["ModelName"] == model["ModelName"]
    assert job["TransformResources"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2}
    assert job["BatchStrategy"] == "SingleRecord"
    data = job["TransformInput"]
    assert data["DataSource"]["S3DataSource"]["S3Uri"] == IMAGES
    assert data["ContentType"] == "application/x-image"
    assert data.get("SplitType", "None") == "None"
    assert job["TransformOutput"]["S3OutputPath"] == OUT
    assert job["TransformOutput"]["Accept"] == "application/json"
    assert sm.describe(conn, "transform", "dogs-b")["TransformJobStatus"] == "Completed"


def test_transform_code_in_model_and_bad_uris(conn):  # noqa: F811
    models = capture(conn, "CreateModel")
    absent = f"s3://{BUCKET}/dogclf/output/none/output/model.tar.gz"  # never downloaded: nothing to repack
    sm.batch_transform(conn, absent, IMAGES, OUT, sm.TransformOptions(role=ROLE, code_in_model=True))
    env = models[0]["PrimaryContainer"]["Environment"]
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code" and env["DOGCLF_TOPK"] == "5"
    with pytest.raises(ConfigError, match="not an S3 URI: 'images/'"):
        sm.batch_transform(conn, absent, "images/", OUT, sm.TransformOptions(role=ROLE))
    with pytest.raises(ConfigError, match="topk"):
        sm.TransformOptions(role=ROLE, topk=0)


def test_waiting_on_a_failed_transform_job_is_an_error(conn):  # noqa: F811
    absent = f"s3://{BUCKET}/dogclf/output/none/output/model.tar.gz"
    opts = sm.TransformOptions(role=ROLE, code_in_model=True, job_name="dogs-ok")
    assert sm.batch_transform(conn, absent, IMAGES, OUT, opts, wait=True) == "dogs-ok"  # Completed: silent

    def failed(parsed, **_):  # moto completes every job; make this one look failed on the way back
        parsed.update(TransformJobStatus="Failed", FailureReason="ClientError: See job logs")

    conn.session.sagemaker_client.meta.events.register("after-call.sagemaker.DescribeTransformJob", failed)
    opts = sm.TransformOptions(role=ROLE, code_in_model=True, job_name="dogs-bad")
    with pytest.raises(sm.SageMakerError, match="^transform job dogs-bad ended Failed: ClientError: See job logs$"):
        sm.batch_transform(conn, absent, IMAGES, OUT, opts, wait=True)


@pytest.fixture(scope="module")
def handlers(tiny_run, tmp_path_factory):
    """code/inference.py of the packaged tiny model, imported as the toolkit does, and its model dir."""
    tmp = tmp_path_factory.mktemp("batch-model")
    model_dir = extract_model(package_model(tiny_run, tmp / "model.tar.gz"), tmp / "opt_ml_model")
    spec = importlib.util.spec_from_file_location("inference", model_dir / "code" / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, model_dir


def _served(handlers, image: bytes) -> bytes:
    """What Batch Transform writes for one image: output_fn's JSON body, as with Accept application/json."""
    entry, model_dir = handlers
    model = entry.model_fn(str(model_dir))
    body, content_type = entry.output_fn(entry.predict_fn(entry.input_fn(image, "application/x-image"), model), None)
    assert content_type == "application/json"
    return body


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_batch_results_csv_equals_predict_output(conn, aws_env, handlers, tiny_run, tiny_data, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("DOGCLF_TOPK", "3")
    monkeypatch.setenv("DOGCLF_PRECISION", "fp32")
    images = sorted((tiny_data / "test").rglob("*.jpg"))[:3]
    s3 = _s3(conn)
    for i, image in enumerate(images):
        rel = f"{image.parent.name}/{i}.jpg"
        s3.put_object(Bucket=BUCKET, Key=f"batch/images/{rel}", Body=image.read_bytes())
        s3.put_object(Bucket=BUCKET, Key=f"batch/out/{rel}.out", Body=_served(handlers, image.read_bytes()))
    common = ["--bucket", BUCKET, "--region", REGION, "--endpoint-url", aws_env]
    r = run_cli("sagemaker", "batch-results", OUT, "--input-prefix", IMAGES, "-o", str(tmp_path / "b.csv"), *common)
    assert r.returncode == 0, r.stderr
    offline = tmp_path / "p.csv"
    r = run_cli(
        "predict", str(tiny_run), *map(str, images), "--topk", "3", "--precision", "fp32", "--output", str(offline)
    )
    assert r.returncode == 0, r.stderr
    batch, local = _rows(tmp_path / "b.csv"), _rows(offline)
    assert (
        batch[0]
        == local[0]
        == ["path", "label_1", "probability_1", "label_2", "probability_2", "label_3", "probability_3", "error"]
    )
    assert [row[0] for row in batch[1:]] == [f"{IMAGES}{image.parent.name}/{i}.jpg" for i, image in enumerate(images)]
    assert [row[1:] for row in batch[1:]] == [row[1:] for row in local[1:]]  # the same handlers, the same answers


def test_batch_results_gaps_and_bad_out_files(conn, aws_env, handlers, tiny_data, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("DOGCLF_TOPK", "2")
    image = sorted((tiny_data / "test").rglob("*.jpg"))[0].read_bytes()
    s3 = _s3(conn)
    for key in ("gaps/in/a.jpg", "gaps/in/b.jpg"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=image)
    s3.put_object(Bucket=BUCKET, Key="gaps/out/a.jpg.out", Body=_served(handlers, image))
    s3.put_object(Bucket=BUCKET, Key="gaps/out/_SUCCESS", Body=b"")  # not an .out: ignored
    rows = sm.batch_results(f"s3://{BUCKET}/gaps/out", f"s3://{BUCKET}/gaps/in/", client=s3)
    assert [(r.path, len(r.labels), r.error) for r in rows] == [
        (f"s3://{BUCKET}/gaps/in/a.jpg", 2, None),
        (f"s3://{BUCKET}/gaps/in/b.jpg", 0, "no batch output b.jpg.out"),
    ]
    common = ["--bucket", BUCKET, "--region", REGION, "--endpoint-url", aws_env]
    r = run_cli(
        "sagemaker",
        "batch-results",
        f"s3://{BUCKET}/gaps/out/",
        "--input-prefix",
        f"s3://{BUCKET}/gaps/in/",
        "-o",
        str(tmp_path / "g.csv"),
        *common,
    )
    assert r.returncode == 1 and "1 without output" in r.stdout
    s3.put_object(Bucket=BUCKET, Key="gaps/out/b.jpg.out", Body=b"<html>oops</html>")
    r = run_cli("sagemaker", "batch-results", f"s3://{BUCKET}/gaps/out/", "-o", str(tmp_path / "h.csv"), *common)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith(f"dogclf: error: s3://{BUCKET}/gaps/out/b.jpg.out: not a dogclf batch output (not JSON)")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not JSON"),
        (b'{"predictions": [[{"label": "a", "probability": 1}], []]}', "no single-image predictions list"),
        (b'{"error": {"status": 400}}', "no single-image predictions list"),
        (b'{"predictions": [[{"label": "a", "probability": "high"}]]}', "a prediction without a label and a numeric"),
    ],
)
def test_parse_out_rejects_other_bodies(body, why):
    with pytest.raises(sm.SageMakerError, match=f"^out/x.jpg.out: not a dogclf batch output \\({why}"):
        sm.parse_out(body, "out/x.jpg.out", "x.jpg")


def test_batch_results_of_a_local_folder(handlers, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("DOGCLF_TOPK", "4")
    image = sorted((tiny_data / "test").rglob("*.jpg"))[0].read_bytes()
    (tmp_path / "out" / "dogs").mkdir(parents=True)
    (tmp_path / "out" / "dogs" / "a.jpg.out").write_bytes(_served(handlers, image))
    (row,) = sm.batch_results(str(tmp_path / "out"))
    assert row.path == "dogs/a.jpg" and len(row.labels) == 3 and row.error is None  # 3 classes < top 4
    assert abs(sum(row.probabilities) - 1) < 1e-5
    (tmp_path / "empty").mkdir()
    with pytest.raises(sm.SageMakerError, match="no .out objects"):
        sm.batch_results(str(tmp_path / "empty"))
    with pytest.raises(sm.SageMakerError, match="batch output folder not found"):
        sm.batch_results(str(tmp_path / "missing"))
