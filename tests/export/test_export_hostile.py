"""Hostile exports: what a writer of MODEL/exports/ can plant is refused before an engine reads it.

An ONNX initializer kept as external data names any file; served, its bytes came back as logits.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from conftest import run_cli
from dogclf.artifact import load_artifact
from dogclf.backends.exports import EXPORT_FILE
from dogclf.errors import ArtifactError
from dogclf.inference import InferenceEngine
from dogclf.serve.package import package_model

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

SECRET = b"AKIA-TOP-SECRET-CREDENTIALS-0123456789"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DOGCLF_MODEL_CACHE", str(tmp_path / "cache"))


def _forge_metadata(folder: Path, **changes) -> None:
    """Rewrite export.json as an attacker would: consistent with the files now in the folder."""
    from dogclf.fsutil import file_sha256

    path = folder / EXPORT_FILE
    meta = {**json.loads(path.read_text()), **changes}
    if "digests" in meta:
        meta["digests"] = {f: file_sha256(folder / f) for f in meta["files"]}
    path.write_text(json.dumps(meta))


def _leaking_onnx(path: Path, location: str, size: int) -> None:
    """An ONNX model whose logits are the bytes of the file at `location` (an external-data initializer)."""
    from onnx import TensorProto, helper
    from onnx.external_data_helper import set_external_data

    secret = helper.make_tensor("secret", TensorProto.UINT8, [size], vals=b"\0" * size, raw=True)
    set_external_data(secret, location=location, offset=0, length=size)
    secret.ClearField("raw_data")
    secret.data_location = TensorProto.EXTERNAL
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("ReduceSum", ["flat", "axes"], ["sum"], keepdims=1),
        helper.make_node("Mul", ["sum", "zero"], ["nothing"]),
        helper.make_node("Cast", ["secret"], ["bytes"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["nothing", "bytes"], ["logits"]),
    ]
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    graph = helper.make_graph(
        nodes,
        "leak",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", size])],
        initializer=[secret, axes, zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())


@pytest.fixture()
def secret(tmp_path) -> Path:
    path = tmp_path / "outside" / "credentials"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def _model_with_onnx_only(exported_model: Path, dest: Path) -> Path:
    """A copy of the exported model whose only export is onnx-fp32 (what auto would pick)."""
    model = Path(shutil.copytree(exported_model, dest))
    for folder in (model / "exports").iterdir():
        if folder.name != "onnx-fp32":
            shutil.rmtree(folder)
    return model


@pytest.fixture()
def leaking_model(exported_model, tmp_path, secret) -> Path:
    """exports/onnx-fp32 replaced by a model reading `secret` as external data, with a valid export.json."""
    model = _model_with_onnx_only(exported_model, tmp_path / "model")
    folder = model / "exports" / "onnx-fp32"
    _leaking_onnx(folder / "model.onnx", str(secret), len(SECRET))
    _forge_metadata(folder)
    return model


@pytest.mark.parametrize("relative", [False, True])
def test_onnx_external_data_is_refused_before_the_engine_reads_it(leaking_model, secret, relative):
    folder = leaking_model / "exports" / "onnx-fp32"
    if relative:  # ../../../outside/credentials from the export folder
        _leaking_onnx(folder / "model.onnx", str(Path("../../..") / secret.relative_to(folder.parents[2])), len(SECRET))
        _forge_metadata(folder)
    with pytest.raises(ArtifactError, match="tensor 'secret' is stored as external data"):
        InferenceEngine(load_artifact(leaking_model), backend="onnx-fp32")


def test_packaging_refuses_an_onnx_export_with_external_data(leaking_model, tmp_path):
    out = tmp_path / "model.tar.gz"
    with pytest.raises(ArtifactError, match="model.onnx: tensor 'secret' is stored as external data"):
        package_model(leaking_model, out, export="onnx-fp32")
    assert not out.exists()
    result = run_cli("package", str(leaking_model), "--export", "onnx-fp32", "-o", str(out))
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.count("\n") == 1 and "stored as external data" in result.stderr, result.stderr


def test_predict_refuses_an_onnx_export_with_external_data(leaking_model, tiny_data):
    image = next((tiny_data / "test").rglob("*.jpg"))
    result = run_cli("predict", str(leaking_model), str(image), "--backend", "onnx-fp32")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("dogclf: error: ") and "stored as external data" in result.stderr
    assert "Traceback" not in result.stderr and str(SECRET[:20]) not in result.stdout


def _tarball(model: Path, out: Path) -> Path:
    """model.tar.gz of a model folder as-is (what `package` would have written before it checked exports)."""
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(model.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(model).as_posix())
    return out


def test_serve_never_returns_a_file_named_by_external_data(leaking_model, secret, tmp_path):
    tarball = _tarball(leaking_model, tmp_path / "model.tar.gz")
    result = run_cli("serve", str(tarball), "--backend", "onnx-fp32", "--port", "0", timeout=120)
    assert result.returncode != 0
    assert '"event": "load_failed"' in result.stderr and "stored as external data" in result.stderr
    assert "Traceback" not in result.stderr
