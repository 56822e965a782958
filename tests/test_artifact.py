"""Model artifact: self-contained loading, weights_only safety, and clear errors."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from dogclf.artifact import load_artifact, save_artifact
from dogclf.errors import ArtifactError
from dogclf.training.checkpoint import load_checkpoint


def test_artifact_reproduces_best_weights_without_other_files(tiny_run, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_run / "model", copy)
    art = load_artifact(copy)
    best = load_checkpoint(tiny_run / "checkpoints" / "best.pt")
    state = art.model.state_dict()
    assert all(torch.equal(state[k], best[k].cpu()) for k in best)
    assert not art.model.training


def test_metadata_errors_name_file_and_field(tiny_run, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_run / "model", copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["class_names"] = meta["class_names"][:2]
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="2 class_names but num_classes=3"):
        load_artifact(copy)
    meta.pop("arch")
    (copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=r"metadata\.json.*arch: Field required"):
        load_artifact(copy)


def test_pickled_weights_are_refused(tiny_run, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_run / "model", copy)
    torch.save(load_artifact(tiny_run).model, copy / "model.pth")  # a whole pickled module
    with pytest.raises(ArtifactError, match="weights_only=True"):
        load_artifact(copy)


def test_missing_model_is_named(tmp_path):
    with pytest.raises(ArtifactError, match="model not found"):
        load_artifact(tmp_path / "nowhere")
    with pytest.raises(ArtifactError, match="holds no metadata.json"):
        load_artifact(tmp_path)


def _crash_on_swap_in(monkeypatch, directory):
    """os.replace raises when the new folder would be renamed onto `directory` (a kill between the renames)."""
    real = os.replace

    def replace(src, dst):
        if Path(dst) == directory and Path(src).name.startswith(f".{directory.name}-"):
            raise OSError("killed")
        return real(src, dst)

    monkeypatch.setattr("dogclf.artifact.os.replace", replace)


def test_save_swaps_atomically_and_a_crash_between_renames_keeps_the_old_model(tiny_run, tmp_path, monkeypatch):
    old = load_artifact(tiny_run)
    directory = tmp_path / "run" / "model"
    save_artifact(directory, old.model, old.metadata)
    new_meta = old.metadata.model_copy(update={"run_name": "new"})
    _crash_on_swap_in(monkeypatch, directory)
    with pytest.raises(OSError, match="killed"):
        save_artifact(directory, old.model, new_meta)
    monkeypatch.undo()
    assert not directory.exists()  # the old one waits as the backup
    loaded = load_artifact(tmp_path / "run")  # recovers the backup
    assert loaded.metadata.run_name == old.metadata.run_name and (directory / "model.pth").is_file()
    assert not (tmp_path / "run" / ".model.old").exists()
    save_artifact(directory, old.model, new_meta)
    assert load_artifact(directory).metadata.run_name == "new"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["model"]  # no temp or backup left


def test_a_stale_backup_beside_a_complete_model_is_ignored(tiny_run, tmp_path):
    art = load_artifact(tiny_run)
    directory = tmp_path / "model"
    save_artifact(directory, art.model, art.metadata)
    shutil.copytree(directory, tmp_path / ".model.old")
    (tmp_path / ".model.old" / "metadata.json").write_text("{}")
    assert load_artifact(directory).metadata.arch == art.metadata.arch
    save_artifact(directory, art.model, art.metadata)
    assert not (tmp_path / ".model.old").exists()
