"""The local model cache against a hostile neighbour: planted links, shared folders, an archive swapped mid-way."""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile

import pytest

from conftest import run_cli
from dogclf.cache import cache_root
from dogclf.errors import ArtifactError
from dogclf.serve.package import extract_cached, package_model


def test_a_planted_link_in_tmpdir_is_refused_as_the_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("DOGCLF_MODEL_CACHE", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    target = tmp_path / "attacker-owned"
    target.mkdir(mode=0o700)
    (tmp_path / f"dogclf-models-{os.getuid()}").symlink_to(target, target_is_directory=True)
    with pytest.raises(ArtifactError, match=f"model cache {tmp_path}/dogclf-models-{os.getuid()} is a symbolic link"):
        cache_root()


def test_a_cache_others_may_read_or_that_another_user_owns_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    root.mkdir()
    monkeypatch.setenv("DOGCLF_MODEL_CACHE", str(root))
    root.chmod(0o750)
    with pytest.raises(ArtifactError, match=r"not a private folder of this user \(owner uid \d+, mode 750\)"):
        cache_root()
    root.chmod(0o700)
    assert cache_root() == root  # private: accepted
    if os.getuid() == 0:  # only root can give a folder away
        os.chown(root, 12345, 12345)
        with pytest.raises(ArtifactError, match="owner uid 12345"):
            cache_root()


def test_serve_from_an_archive_with_a_linked_cache_is_one_line(tiny_run, tmp_path):
    archive = package_model(tiny_run, tmp_path / "model.tar.gz")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "cache").symlink_to(elsewhere, target_is_directory=True)
    result = run_cli("serve", str(archive), "--port", "0", env={"DOGCLF_MODEL_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("dogclf: error: model cache") and "symbolic link" in result.stderr
    assert not any(elsewhere.iterdir())


def test_an_archive_swapped_after_hashing_cannot_poison_the_cache(tiny_run, tmp_path, monkeypatch):
    """The key is the hash of the bytes extracted: a swap between hashing and extracting changes nothing."""
    good = package_model(tiny_run, tmp_path / "model.tar.gz")
    evil = tmp_path / "evil.tar.gz"
    (tmp_path / "model.pth").write_bytes(b"evil weights")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(tiny_run / "model" / "metadata.json", "metadata.json")
        tar.add(tmp_path / "model.pth", "model.pth")
    key = hashlib.sha256(good.read_bytes()).hexdigest()[:32]
    real_sha256, swapped = hashlib.sha256, []

    class SwapAfterHashing:
        """sha256 whose result, once read, lets a neighbour replace the archive on disk (os.replace: a new inode)."""

        def __init__(self, *args) -> None:
            self._digest = real_sha256(*args)

        def update(self, data: bytes) -> None:
            self._digest.update(data)

        def hexdigest(self) -> str:
            if not swapped:
                swapped.append(os.replace(evil, good))
            return self._digest.hexdigest()

    monkeypatch.setattr(hashlib, "sha256", SwapAfterHashing)
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    folder = extract_cached(good, root=root)
    monkeypatch.undo()
    assert swapped and folder.name == key
    assert (folder / "model.pth").read_bytes() == (tiny_run / "model" / "model.pth").read_bytes()
