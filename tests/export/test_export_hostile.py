"""Hostile exports: what a writer of MODEL/exports/ can plant is refused before an engine reads it.

An ONNX initializer kept as external data names any file (served, its bytes came back as logits); links,
edited export.json files, swapped, corrupt, huge or wrong-width model files are refused by name with one line,
skipped by `auto` with a warning naming the export and why, and never packaged.
"""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
from pathlib import Path

import pytest
import requests

from conftest import run_cli
from dogclf.artifact import load_artifact
from dogclf.backends.exports import EXPORT_FILE
from dogclf.backends.select import choose_backend
from dogclf.errors import ArtifactError
from dogclf.inference import InferenceEngine
from dogclf.serve.local import LocalEndpoint
from dogclf.serve.package import package_model

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

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


def test_auto_serving_never_returns_the_bytes_of_a_file_named_by_external_data(leaking_model, tmp_path):
    import io

    import numpy as np

    tarball = _tarball(leaking_model, tmp_path / "model.tar.gz")
    with LocalEndpoint(tarball, "--backend", "auto", "--threads", "1", "--workers", "1") as ep:
        r = requests.post(
            f"{ep.url}/invocations",
            data=_png(),
            headers={"Content-Type": "image/png", "Accept": "application/x-npy"},
            timeout=30,
        )
        log = ep.log_text()
    assert r.status_code == 200, r.text
    logits = np.load(io.BytesIO(r.content), allow_pickle=False)
    assert logits.shape == (1, 3), logits.shape  # eager's three classes, not one logit per byte of the file
    assert SECRET not in r.content and SECRET not in bytes(np.clip(logits, 0, 255).astype(np.uint8))
    assert "export onnx-fp32 not used" in log and "stored as external data" in log and "Traceback" not in log


def _constant_onnx(path: Path, width: int) -> None:
    """A valid ONNX model giving `width` logits per image (whatever the image)."""
    from onnx import TensorProto, helper

    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [width], [float(i) for i in range(width)])
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("ReduceSum", ["flat", "axes"], ["sum"], keepdims=1),
        helper.make_node("Mul", ["sum", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "constant",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", width])],
        initializer=[axes, zero, bias],
    )
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())


@pytest.fixture()
def model(exported_model, tmp_path) -> Path:
    """A copy of the exported model (openvino-int8, onnx-fp32, openvino-fp32) to tamper with."""
    return Path(shutil.copytree(exported_model, tmp_path / "model"))


def _refused_everywhere(model: Path, name: str, words: str, tmp_path: Path, caplog) -> None:
    """By name: one-line ArtifactError; packaged: refused, nothing written; auto: skipped with a warning saying why."""
    with pytest.raises(ArtifactError, match=words):
        choose_backend(model, name)
    out = tmp_path / f"{name}.tar.gz"
    with pytest.raises(ArtifactError, match=words):
        package_model(model, out, export=name)
    assert not out.exists()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        choice = choose_backend(model, "auto")
    assert choice.export is None or choice.export.name != name
    assert any(name in r.getMessage() and words in r.getMessage() for r in caplog.records), caplog.text


def test_healthy_exports_load_without_a_warning(model, caplog):
    with caplog.at_level(logging.WARNING):
        assert choose_backend(model, "auto").export.name == "openvino-int8"
        for name in ("openvino-int8", "onnx-fp32", "openvino-fp32"):
            engine = InferenceEngine(load_artifact(model), backend=name)
            assert f"export {name}" in engine.describe()
    assert not caplog.records, caplog.text


@pytest.mark.parametrize(("name", "file"), [("onnx-fp32", "model.onnx"), ("openvino-fp32", "model.xml"),
                                            ("openvino-fp32", "model.bin")])  # fmt: skip
def test_symlinked_model_file_is_refused_and_never_packaged(model, tmp_path, caplog, name, file):
    target = tmp_path / "outside" / file  # the same bytes, so only the link itself is wrong
    target.parent.mkdir()
    path = model / "exports" / name / file
    shutil.move(path, target)
    path.symlink_to(target)
    _refused_everywhere(model, name, f"{file} is a symbolic link", tmp_path, caplog)
    result = run_cli("package", str(model), "--export", name, "-o", str(tmp_path / "cli.tar.gz"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "symbolic link" in result.stderr
    assert not (tmp_path / "cli.tar.gz").exists()


def test_symlinked_export_folder_is_refused(model, tmp_path, caplog):
    elsewhere = tmp_path / "elsewhere"
    shutil.move(model / "exports" / "openvino-int8", elsewhere)
    (model / "exports" / "openvino-int8").symlink_to(elsewhere, target_is_directory=True)
    _refused_everywhere(model, "openvino-int8", "is a symbolic link; an export folder must be a real folder", tmp_path,
                        caplog)  # fmt: skip
    assert choose_backend(model, "auto").export.name == "openvino-fp32"  # the next trusted export


def test_symlinked_exports_root_is_refused(model, tmp_path, caplog):
    shutil.move(model / "exports", tmp_path / "exports")
    (model / "exports").symlink_to(tmp_path / "exports", target_is_directory=True)
    with pytest.raises(ArtifactError, match="exports is a symbolic link; exports must be a real folder"):
        choose_backend(model, "onnx-fp32")
    with pytest.raises(ArtifactError, match="exports is a symbolic link"):
        package_model(model, tmp_path / "m.tar.gz", export="onnx-fp32")
    with caplog.at_level(logging.WARNING):
        assert choose_backend(model, "auto").engine == "eager"
    assert "export not used" in caplog.text and "exports is a symbolic link" in caplog.text


def _forced(folder: Path) -> None:
    """Turn the export into what `dogclf export --force` leaves after a failed gate: 5 points lost, over 1."""
    meta = json.loads((folder / EXPORT_FILE).read_text())
    check = meta["accuracy"]
    check.update(top1=check["top1_reference"] - 0.05, drop_points=5.0, passed=False, forced=True)
    check.update(lost=None, gained=None, drop_upper_points=None)  # judged on drop_points, as older exports are
    (folder / EXPORT_FILE).write_text(json.dumps(meta))


def test_a_gate_verdict_edited_into_a_forced_export_is_refused(model, tmp_path, caplog):
    folder = model / "exports" / "openvino-int8"
    _forced(folder)
    assert choose_backend(model, "auto").export.name == "openvino-fp32"  # forced: never auto
    meta = json.loads((folder / EXPORT_FILE).read_text())
    meta["accuracy"].update(passed=True, forced=False)
    (folder / EXPORT_FILE).write_text(json.dumps(meta))
    _refused_everywhere(model, "openvino-int8", "passed=True forced=False disagrees with drop 5.0", tmp_path,
                        caplog)  # fmt: skip


def test_an_export_in_another_exports_folder_is_refused(model, tmp_path, caplog):
    shutil.rmtree(model / "exports" / "openvino-int8")
    shutil.copytree(model / "exports" / "onnx-fp32", model / "exports" / "openvino-int8")
    _refused_everywhere(model, "openvino-int8", "describes export onnx-fp32, not openvino-int8", tmp_path, caplog)
    assert choose_backend(model, "auto").export.name == "openvino-fp32"


@pytest.mark.parametrize(("name", "file"), [("onnx-fp32", "model.onnx"), ("openvino-fp32", "model.bin")])
def test_a_swapped_model_file_is_refused_at_load_and_packaging(model, tmp_path, caplog, name, file):
    path = model / "exports" / name / file
    data = bytearray(path.read_bytes())
    data[-8:] = b"\x7f" * 8  # the last weights changed: still a model the engine would run
    path.write_bytes(bytes(data))
    words = f"{file} is not the file that was exported"
    with pytest.raises(ArtifactError, match=words):
        InferenceEngine(load_artifact(model), backend=name)
    with pytest.raises(ArtifactError, match=words):
        package_model(model, tmp_path / "m.tar.gz", export=name)
    assert not (tmp_path / "m.tar.gz").exists()


def test_metadata_errors_are_reported_as_they_are(model, caplog):
    folder = model / "exports" / "onnx-fp32"
    meta = json.loads((folder / EXPORT_FILE).read_text())
    (folder / EXPORT_FILE).write_text(json.dumps({**meta, "files": ["../../model.pth"]}))
    with pytest.raises(ArtifactError, match=r"invalid export metadata: files: Value error, files must be among"):
        choose_backend(model, "onnx-fp32")  # not "does not exist"
    (folder / EXPORT_FILE).write_text(json.dumps({**meta, "trusted": True}))
    with caplog.at_level(logging.WARNING):
        choose_backend(model, "auto")
    assert "export not used" in caplog.text and "onnx-fp32/export.json: invalid export metadata: trusted: Extra" in (
        caplog.text
    )


def _only(model: Path, keep: str) -> Path:
    for folder in (model / "exports").iterdir():
        if folder.name != keep:
            shutil.rmtree(folder)
    return model / "exports" / keep


def test_wrong_width_export_is_one_line_by_name_and_eager_under_auto(model, tiny_data, caplog):
    folder = _only(model, "onnx-fp32")
    _constant_onnx(folder / "model.onnx", 5)  # the model has 3 classes
    _forge_metadata(folder)
    words = r"the export gives logits of shape \(1, 5\) for one image; the model has 3 classes"
    with pytest.raises(ArtifactError, match=words):
        InferenceEngine(load_artifact(model), backend="onnx-fp32")
    image = next((tiny_data / "test").rglob("*.jpg"))
    result = run_cli("predict", str(model), str(image), "--backend", "onnx-fp32")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("dogclf: error: ") and "has 3 classes" in result.stderr
    with caplog.at_level(logging.WARNING):
        engine = InferenceEngine(load_artifact(model), backend="auto")
    assert engine.backend.name == "eager" and "export onnx-fp32 not used" in caplog.text
    assert engine.topk(engine.logits(engine.preprocess(image).unsqueeze(0)), 3)[0].labels


# case -> (export, file, content); the export's metadata is then forged to agree with the file.
CORRUPT = {
    "onnx garbage": ("onnx-fp32", "model.onnx", b"not an onnx model " * 8),
    "openvino garbage": ("openvino-fp32", "model.xml", b"<net name='x'><layers>"),
}


def _corrupt(model: Path, case: str) -> str:
    """Break one export's model file in a way its metadata agrees with (or make it 3 GB sparse); the export's name."""
    if case == "sparse 3 GB":
        folder = _only(model, "openvino-fp32")
        with (folder / "model.bin").open("r+b") as f:
            f.truncate(3 * 1024**3)
        return folder.name
    name, file, content = CORRUPT[case]
    folder = _only(model, name)
    (folder / file).write_bytes(content)
    _forge_metadata(folder)
    return name


@pytest.mark.parametrize("case", ["onnx garbage", "openvino garbage", "sparse 3 GB"])
def test_corrupt_or_huge_export_falls_back_to_eager_under_auto(model, tiny_data, case):
    name = _corrupt(model, case)
    image = next((tiny_data / "test").rglob("*.jpg"))
    result = run_cli("predict", str(model), str(image), "--backend", "auto")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and result.stdout.startswith(f"{image}: ")
    assert f"{name}" in result.stderr and "not used" in result.stderr, result.stderr
    named = run_cli("predict", str(model), str(image), "--backend", name)
    assert named.returncode == 2 and "Traceback" not in named.stderr
    assert named.stderr.splitlines()[-1].startswith("dogclf: error: "), named.stderr


def test_serve_logs_the_export_it_skips_and_serves_eager(model, tmp_path):
    name = _corrupt(model, "openvino garbage")
    with LocalEndpoint(model, "--threads", "1", "--workers", "1") as ep:
        r = requests.post(f"{ep.url}/invocations", data=_png(), headers={"Content-Type": "image/png"}, timeout=30)
        assert r.status_code == 200 and r.json()["predictions"]
        log = ep.log_text()
    assert f"export {name} not used" in log and "openvino cannot run it" in log and "Traceback" not in log


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()
