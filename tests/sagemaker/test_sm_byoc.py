"""`deploy`/`batch-predict` shipping a gated export (requests captured against moto), and the BYOC container:
its Dockerfile, and its entry command run as SageMaker runs it against a model laid out as /opt/ml/model."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile

import pytest
import requests
from sm_moto import BUCKET, REGION, ROLE, _free_port, aws_env, capture, conn, moto_url  # noqa: F401

import dogclf.sagemaker as sm
from conftest import run_cli
from dogclf.errors import ArtifactError
from dogclf.serve.client import EndpointClient
from dogclf.serve.package import extract_model, package_model

IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/dogclf-serve:1"


def _members(conn, uri: str) -> dict[str, bytes]:  # noqa: F811
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body = conn.session.boto_session.client("s3", endpoint_url=conn.endpoint_url).get_object(Bucket=bucket, Key=key)
    with tarfile.open(fileobj=io.BytesIO(body["Body"].read()), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_deploy_export_ships_the_export_and_picks_the_backend(conn, exported_model):  # noqa: F811
    models = capture(conn, "CreateModel")
    opts = sm.DeployOptions(role=ROLE, endpoint_name="dogs-int8", export="openvino-int8")
    assert sm.deploy(conn, str(exported_model), opts).endpoint_name == "dogs-int8"
    container = models[0]["PrimaryContainer"]
    assert container["Environment"]["DOGCLF_BACKEND"] == "openvino-int8"
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"  # served as packaged
    assert container["Image"].endswith("pytorch-inference:2.6.0-cpu-py312")
    uri = container["ModelDataUrl"]
    assert uri.startswith(f"s3://{BUCKET}/dogclf/models/model-")
    members = _members(conn, uri)
    assert "exports/openvino-int8/export.json" in members and "model.pth" in members
    assert members["code/requirements.txt"].decode().startswith("dogclf[openvino]==")
    sm.delete_endpoint(conn, "dogs-int8")


def test_deploy_export_the_model_lacks_is_refused_before_any_request(conn, tiny_run):  # noqa: F811
    models = capture(conn, "CreateModel")
    opts = sm.DeployOptions(role=ROLE, endpoint_name="dogs-none", export="openvino-int8")
    with pytest.raises(ArtifactError, match="openvino-int8"):
        sm.deploy(conn, str(tiny_run), opts)
    assert models == []


def test_deploy_image_serves_in_your_own_container(conn, tiny_run):  # noqa: F811
    models = capture(conn, "CreateModel")
    opts = sm.DeployOptions(role=ROLE, endpoint_name="dogs-byoc", image_uri=IMAGE)
    sm.deploy(conn, str(tiny_run), opts)
    container = models[0]["PrimaryContainer"]
    assert container["Image"] == IMAGE
    assert "SAGEMAKER_PROGRAM" not in container.get("Environment", {})
    assert "DOGCLF_BACKEND" not in container.get("Environment", {})  # no export asked for: auto
    assert "metadata.json" in _members(conn, container["ModelDataUrl"])
    sm.delete_endpoint(conn, "dogs-byoc")


def test_cli_batch_predict_export_with_own_image(aws_env, conn, exported_model):  # noqa: F811
    common = ["--bucket", BUCKET, "--region", REGION, "--endpoint-url", aws_env]
    io_uris = ["--input", f"s3://{BUCKET}/batch/images/", "--output", f"s3://{BUCKET}/batch/out/"]
    r = run_cli("sagemaker", "batch-predict", str(exported_model), *io_uris, "--role", ROLE, "--export",
                "onnx-fp32", "--image", IMAGE, "--job-name", "dogs-onnx", "--topk", "2", *common)  # fmt: skip
    assert r.returncode == 0, r.stderr
    client = conn.session.sagemaker_client
    job = client.describe_transform_job(TransformJobName="dogs-onnx")
    container = client.describe_model(ModelName=job["ModelName"])["PrimaryContainer"]
    assert container["Image"] == IMAGE
    assert container["Environment"] == {"DOGCLF_BACKEND": "onnx-fp32", "DOGCLF_TOPK": "2"}
    assert "exports/onnx-fp32/export.json" in _members(conn, container["ModelDataUrl"])


def test_cli_dockerfile_with_a_wheel_and_a_bad_one(tmp_path):
    wheel = tmp_path / "dogclf-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    r = run_cli("sagemaker", "dockerfile", "-o", str(tmp_path / "ctx"), "--wheel", str(wheel))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "ctx" / "Dockerfile").read_text()
    assert (tmp_path / "ctx" / wheel.name).read_bytes() == wheel.read_bytes()
    lines = text.splitlines()
    assert lines[2] == "FROM python:3.12-slim"
    assert any("torch==2.6.0" in line and "/whl/cpu" in line for line in lines)
    assert f'RUN pip install "/tmp/{wheel.name}[serve,openvino]" && rm /tmp/{wheel.name}' in lines
    assert lines[-1] == 'ENTRYPOINT ["python", "-m", "dogclf.cli.container"]'
    r = run_cli("sagemaker", "dockerfile", "-o", str(tmp_path / "bad"), "--wheel", str(tmp_path / "nope.whl"))
    assert r.returncode == 2 and "dogclf: error: --wheel must be an existing .whl file" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "bad" / "Dockerfile").exists()


def _entry_command(tmp_path) -> list[str]:
    """The generated Dockerfile's ENTRYPOINT plus SageMaker's `serve` argument, on this Python."""
    run_cli("sagemaker", "dockerfile", "-o", str(tmp_path / "ctx"))
    line = (tmp_path / "ctx" / "Dockerfile").read_text().splitlines()[-1]
    entry = json.loads(line.removeprefix("ENTRYPOINT "))
    assert entry[0] == "python"
    return [sys.executable, *entry[1:], "serve"]


def test_container_entry_serves_as_sagemaker_runs_it(tmp_path, exported_model, tiny_data):
    model_dir = tmp_path / "opt" / "ml" / "model"
    extract_model(package_model(exported_model, tmp_path / "model.tar.gz", export="openvino-int8"), model_dir)
    port = _free_port()
    env = {**os.environ, "DOGCLF_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": str(port),
           "DOGCLF_BACKEND": "openvino-int8", "DOGCLF_TOPK": "2", "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen(_entry_command(tmp_path), env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert proc.stdout.readline().startswith(f"dogclf serve: listening on http://0.0.0.0:{port}")
        url = f"http://127.0.0.1:{port}"
        with EndpointClient(url) as client:
            client.wait_ready(120, is_alive=lambda: proc.poll() is None)
        assert requests.get(f"{url}/ping", timeout=5).status_code == 200
        jpeg = next((tiny_data / "test").rglob("*.jpg")).read_bytes()
        r = requests.post(f"{url}/invocations", data=jpeg, headers={"Content-Type": "application/x-image"}, timeout=30)
        assert r.status_code == 200, r.text
        assert len(r.json()["predictions"][0]) == 2  # DOGCLF_TOPK
        platform = requests.get(f"{url}/v2/models/dogclf", timeout=5).json()["platform"]
        assert "openvino CPU" in platform and "openvino-int8" in platform  # DOGCLF_BACKEND: the engine it runs
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, log.read_text()[-2000:]


def test_container_entry_refuses_other_commands():
    r = subprocess.run([sys.executable, "-m", "dogclf.cli.container", "train"], capture_output=True, text=True)
    assert r.returncode == 2 and "this container runs `serve`" in r.stderr and "'train'" in r.stderr
