"""Model artifact: self-contained loading, weights_only safety, and clear errors."""

import json
import shutil

import pytest
import torch

from dogclf.artifact import load_artifact
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
