"""model.tar.gz: SageMaker layout, byte-for-byte reproducible, and extraction that refuses unsafe entries."""

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from conftest import run_cli
from dogclf import __version__
from dogclf.cli.main import main
from dogclf.entrypoints import script_path
from dogclf.errors import ArtifactError
from dogclf.serve.package import extract_model, model_source, package_model


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_package_layout_and_requirements(tiny_run, tmp_path):
    out = package_model(tiny_run, tmp_path / "model.tar.gz")
    with tarfile.open(out) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == ["code/inference.py", "code/requirements.txt", "metadata.json", "model.pth"]
        assert {(m.mtime, m.uid, m.gid, m.uname, m.mode) for m in members} == {(0, 0, 0, "", 0o644)}
        assert tar.extractfile("code/requirements.txt").read().decode() == f"dogclf=={__version__}\n"
        assert tar.extractfile("code/inference.py").read() == script_path("inference.py").read_bytes()
        assert tar.extractfile("model.pth").read() == (tiny_run / "model" / "model.pth").read_bytes()


def test_inference_entrypoint_is_the_serving_handlers():
    import importlib.util

    from dogclf.serve import handlers

    spec = importlib.util.spec_from_file_location("inference_entry", script_path("inference.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = ("model_fn", "input_fn", "predict_fn", "output_fn")
    assert all(getattr(module, n) is getattr(handlers, n) for n in names)


def test_package_is_reproducible(tiny_run, tmp_path):
    first = package_model(tiny_run, tmp_path / "a.tar.gz")
    (tmp_path / "touch").write_text("time passes")  # different mtimes/paths must not matter
    second = package_model(tiny_run / "model", tmp_path / "b" / "model.tar.gz")
    assert _sha(first) == _sha(second)


def test_bundled_wheel_is_installed_from_its_container_path(tiny_run, tmp_path):
    wheel = tmp_path / f"dogclf-{__version__}-py3-none-any.whl"
    wheel.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    out = package_model(tiny_run, tmp_path / "m.tar.gz", wheel=wheel)
    with tarfile.open(out) as tar:
        assert f"code/{wheel.name}" in tar.getnames()
        line = tar.extractfile("code/requirements.txt").read().decode()
    assert line == f"/opt/ml/model/code/{wheel.name}\n"
    with pytest.raises(ArtifactError, match="--wheel must be an existing .whl file"):
        package_model(tiny_run, tmp_path / "n.tar.gz", wheel=tmp_path / "nope.whl")


def test_round_trip_extract_and_model_source(tiny_run, tmp_path):
    out = package_model(tiny_run, tmp_path / "model.tar.gz")
    dest = extract_model(out, tmp_path / "x")
    assert (dest / "model.pth").read_bytes() == (tiny_run / "model" / "model.pth").read_bytes()
    with model_source(out) as model_dir:
        assert (model_dir / "metadata.json").is_file()
        extracted = model_dir
    assert not extracted.exists()  # the temp extraction is cleaned up


def _evil_tar(path: Path, member: tarfile.TarInfo, payload: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("metadata.json"), io.BytesIO(b""))
        if member.isfile():
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
        else:
            tar.addfile(member)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_member("/tmp/evil.txt"), "refusing absolute path"),
        (_member("../evil.txt"), "could escape"),
        (_member("code/../../evil.txt"), "could escape"),
        (_member("model.pth", tarfile.SYMTYPE, "/etc/passwd"), "refusing link"),
        (_member("model.pth", tarfile.LNKTYPE, "metadata.json"), "refusing link"),
        (_member("fifo", tarfile.FIFOTYPE), "refusing special file"),
    ],
)
def test_extraction_refuses_unsafe_entries_before_writing_anything(tmp_path, member, message):
    archive = _evil_tar(tmp_path / "evil.tar.gz", member)
    dest = tmp_path / "out" / "dest"
    with pytest.raises(ArtifactError, match=message) as err:
        extract_model(archive, dest)
    assert str(archive) in str(err.value)
    assert not dest.exists() and not (tmp_path / "out" / "evil.txt").exists()


def test_unreadable_archive_is_a_clear_error(tmp_path):
    bad = tmp_path / "model.tar.gz"
    bad.write_bytes(b"definitely not gzip")
    with pytest.raises(ArtifactError, match="not a readable model.tar.gz"):
        extract_model(bad, tmp_path / "x")
    with pytest.raises(ArtifactError, match="model archive not found"):
        extract_model(tmp_path / "missing.tar.gz", tmp_path / "y")


def test_package_cli(tiny_run, tmp_path, capsys):
    out = tmp_path / "model.tar.gz"
    r = run_cli("package", str(tiny_run), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert f"-> {out}" in r.stdout and tarfile.is_tarfile(out)
    assert main(["package", str(tmp_path / "nothing"), "-o", str(tmp_path / "x.tar.gz")]) == 2
    assert "model not found" in capsys.readouterr().err
