"""model.tar.gz: SageMaker layout, byte-for-byte reproducible, and extraction that refuses unsafe entries."""

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from conftest import run_cli
from dogclf import __version__
from dogclf.cli.main import main
from dogclf.entry_scripts import script_path
from dogclf.errors import ArtifactError
from dogclf.serve.package import cache_root, extract_model, model_source, package_model


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
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "code/inference.py", "code/requirements.txt", "metadata.json", "model.pth",
    ]  # fmt: skip


def test_model_source_extracts_once_into_a_cache_keyed_by_content(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("DOGCLF_MODEL_CACHE", str(tmp_path / "cache"))
    out = package_model(tiny_run, tmp_path / "model.tar.gz")
    with model_source(out) as first:
        assert (first / "metadata.json").is_file()
    with model_source(out) as second:  # a restart reuses the folder instead of extracting again
        assert second == first
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]
    stale = tmp_path / "cache" / ".partial-999999999-x"  # a killed extraction: its pid is gone
    live = tmp_path / "cache" / f".partial-{os.getpid()}-y"
    stale.mkdir()
    live.mkdir()
    (tmp_path / "model.pth").write_bytes(b"other")
    other = tmp_path / "other.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        tar.add(first / "metadata.json", "metadata.json")
        tar.add(tmp_path / "model.pth", "model.pth")
    with model_source(other) as third:
        assert third != first and (third / "model.pth").read_bytes() == b"other"
    assert not stale.exists() and live.exists()


def test_cache_root_must_be_private(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv("DOGCLF_MODEL_CACHE", str(shared))
    with pytest.raises(ArtifactError, match="not a private folder"):
        cache_root()
    shared.chmod(0o700)
    assert cache_root() == shared


def test_only_layout_members_are_written(tmp_path):
    archive = tmp_path / "m.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("metadata.json", "model.pth", "code/dogclf-1.0-py3-none-any.whl", "code/pkg/mod.py", "notes.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    dest = extract_model(archive, tmp_path / "x")
    written = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert written == ["code/dogclf-1.0-py3-none-any.whl", "metadata.json", "model.pth"]


def test_sparse_members_are_refused_before_writing(tmp_path):
    archive = _sparse_tar(tmp_path / "sparse.tar")
    with tarfile.open(archive) as tar:
        member = tar.getmember("model.pth")
    assert member.issparse() and member.size == 1 << 30
    dest = tmp_path / "out"
    with pytest.raises(ArtifactError, match="refusing sparse file 'model.pth'"):
        extract_model(archive, dest)
    assert not dest.exists()


def _sparse_tar(path: Path) -> Path:
    """A GNU old-style sparse entry (type 'S') declaring 1 GiB with no data, as `tar -S` writes."""
    info = tarfile.TarInfo("model.pth")
    info.type = tarfile.GNUTYPE_SPARSE
    info.size = 0
    block = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    block[483:495] = b"%011o\0" % (1 << 30)  # realsize field of the GNU header
    block[148:156] = b" " * 8
    block[148:155] = b"%06o\0" % sum(block[:512])
    path.write_bytes(bytes(block) + b"\0" * 1024)
    return path


def test_free_space_is_checked_before_writing(tmp_path, monkeypatch):
    archive = package_model_stub(tmp_path)
    free = type("Usage", (), {"free": 10})()
    monkeypatch.setattr("dogclf.serve.package.shutil.disk_usage", lambda path: free)
    with pytest.raises(ArtifactError, match="only 10 bytes free"):
        extract_model(archive, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    monkeypatch.undo()
    assert (extract_model(archive, tmp_path / "x") / "model.pth").read_bytes() == b"w" * 100


def package_model_stub(tmp_path: Path) -> Path:
    archive = tmp_path / "stub.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("metadata.json", b"{}"), ("model.pth", b"w" * 100)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


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
    with pytest.raises(ArtifactError, match="model.tar.gz not found"):
        extract_model(tmp_path / "missing.tar.gz", tmp_path / "y")


def test_package_cli(tiny_run, tmp_path, capsys):
    out = tmp_path / "model.tar.gz"
    r = run_cli("package", str(tiny_run), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert f"-> {out}" in r.stdout and tarfile.is_tarfile(out)
    assert main(["package", str(tmp_path / "nothing"), "-o", str(tmp_path / "x.tar.gz")]) == 2
    assert "model not found" in capsys.readouterr().err
