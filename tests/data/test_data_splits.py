"""Splits that hold: a flat folder's split is stable when images are added, a run records its splits, and
evaluate/export score the run's own held-out images (never its training images) or say the data is external."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli, tiny_config
from dogclf.data.discovery import discover
from dogclf.data.splits import SPLITS_FILE, SplitRecord, resolve_data
from dogclf.data.synthetic import make_dataset
from dogclf.errors import ArtifactError, ConfigError, DatasetError
from dogclf.evaluation import evaluate
from dogclf.training import train


def _flat(tmp: Path, classes: int = 5, per_class: int = 40, seed: int = 0) -> Path:
    """A flat root/<class>/* folder of `classes` x `per_class` images (the issue's 5 x 40 measurement)."""
    src = make_dataset(tmp / f"src{seed}", classes=classes, per_class=per_class, size=16, seed=seed)
    flat = tmp / f"flat{seed}"
    shutil.copytree(src / "train", flat)
    return flat


def _names(layout, split: str) -> set[str]:
    return {layout.relative(s) for s in layout.splits[split]}


def _add_images(flat: Path, n: int) -> list[str]:
    """Copy n new images (new names, new content from another class) into the first class folder."""
    first, other = sorted(p for p in flat.iterdir() if p.is_dir())[:2]
    added = []
    for i, image in enumerate(sorted(other.iterdir())[:n]):
        target = first / f"added_{i}{image.suffix}"
        target.write_bytes(image.read_bytes() + b"\0" * (i + 1))  # trailing bytes: same picture, new content
        added.append(target.relative_to(flat).as_posix())
    return added


def test_adding_two_images_moves_no_other_file_between_splits(tmp_path):
    flat = _flat(tmp_path)
    before = discover(flat, 0.1, 0.1, seed=1)
    _add_images(flat, 2)
    after = discover(flat, 0.1, 0.1, seed=1)
    for split in ("train", "valid", "test"):
        assert _names(before, split) <= _names(after, split), split


@pytest.fixture(scope="module")
def seed1_run(tmp_path_factory):
    """tiny_cnn trained one epoch with --seed 1 and valid_fraction 0.2 on a flat 5 x 40 folder."""
    tmp = tmp_path_factory.mktemp("seed1")
    flat = _flat(tmp)
    cfg = tiny_config(flat, **{"optim.epochs": 1, "runtime.seed": 1, "data.valid_fraction": 0.2})
    run = tmp / "run"
    train(cfg, run)
    return flat, run


def test_a_run_records_every_file_of_every_split(seed1_run):
    flat, run = seed1_run
    record = SplitRecord.read(run / "model")
    layout = discover(flat, 0.2, 0.1, seed=1)
    assert record is not None and record.rule == {"seed": 1, "valid_fraction": 0.2, "test_fraction": 0.1}
    for split in ("train", "valid", "test"):
        assert set(record.files[split]) == _names(layout, split)
    assert len({p for files in record.files.values() for p in files}) == 200


def test_evaluate_scores_the_runs_recorded_test_split_not_its_training_or_valid_images(seed1_run):
    flat, run = seed1_run
    record = SplitRecord.read(run / "model")
    resolved = resolve_data(flat, record)
    tested = _names(resolved.layout, "test")
    assert tested == set(record.files["test"])
    assert not tested & set(record.files["train"]) and not tested & set(record.files["valid"])
    result = evaluate(run, flat, "test", batch_size=64, workers=0)
    assert result.n == len(record.files["test"])
    assert result.data.startswith("the run's recorded test split")


def test_the_record_holds_after_images_are_added_and_says_which_are_new(seed1_run, tmp_path):
    flat, run = seed1_run
    grown = tmp_path / "grown"
    shutil.copytree(flat, grown)
    added = _add_images(grown, 2)
    record = SplitRecord.read(run / "model")
    resolved = resolve_data(grown, record)
    assert resolved.source == "run" and resolved.new == sorted(added) and not resolved.missing
    for split in ("train", "valid", "test"):
        assert set(record.files[split]) <= _names(resolved.layout, split)
    assert not _names(resolved.layout, "test") & set(record.files["train"])
    assert "2 new" in evaluate(run, grown, "test", workers=0).data


def test_a_training_image_moved_into_a_held_out_split_is_refused_in_one_line(seed1_run, tmp_path):
    flat, run = seed1_run
    record = SplitRecord.read(run / "model")
    moved = tmp_path / "moved"
    shutil.copytree(flat, moved)
    victim = sorted(record.files["train"])[0]
    folder = moved / victim.split("/")[0]
    # a renamed copy of a training image whose new name the recorded rule puts in test
    name = next(f"copy_{i}.jpg" for i in range(1000) if _rule_split(record, f"{folder.name}/copy_{i}.jpg") == "test")
    shutil.copy(moved / victim, folder / name)
    with pytest.raises(DatasetError, match=r"1 image\(s\) the model was trained on would be scored as held out"):
        resolve_data(moved, record)
    proc = run_cli("evaluate", str(run), "--data", str(moved))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "trained on" in proc.stderr


def _rule_split(record: SplitRecord, relative: str) -> str:
    from dogclf.data.discovery import split_position

    rule = record.rule or {}
    u = split_position(int(rule["seed"]), relative)
    cut = rule["valid_fraction"] + rule["test_fraction"]
    return "valid" if u < rule["valid_fraction"] else "test" if u < cut else "train"


def test_data_the_model_never_saw_is_an_external_test_set(seed1_run, tmp_path):
    _, run = seed1_run
    other = _flat(tmp_path, per_class=6, seed=7)
    result = evaluate(run, other, "test", workers=0)
    assert result.n == 30 and result.data.startswith("external test set: 30 images")


def test_a_model_without_a_record_is_evaluated_with_a_warning(seed1_run, tmp_path, caplog):
    flat, run = seed1_run
    model = tmp_path / "model"
    shutil.copytree(run / "model", model)
    (model / SPLITS_FILE).unlink()
    result = evaluate(model, flat, "test", workers=0)
    assert "no split record" in result.data and "has no splits.json" in caplog.text


def test_evaluate_json_carries_the_sample_size_interval_and_data(seed1_run):
    flat, run = seed1_run
    proc = run_cli("evaluate", str(run), "--data", str(flat), "--json")
    doc = json.loads(proc.stdout)
    low, high = doc["top1_interval"]
    record = SplitRecord.read(run / "model")
    assert record is not None and doc["n"] == len(record.files["test"]) and "recorded test split" in doc["data"]
    assert 0 <= low <= doc["top1"] <= high <= 1 and high - low > 0.2  # 20-odd images: a wide interval


def test_a_corrupt_or_linked_split_record_is_refused_in_one_line(seed1_run, tmp_path):
    _, run = seed1_run
    model = shutil.copytree(run / "model", tmp_path / "model")
    (model / SPLITS_FILE).write_text("{not json")
    with pytest.raises(ArtifactError, match=f"cannot read {model / SPLITS_FILE}"):
        SplitRecord.read(model)
    (model / SPLITS_FILE).unlink()
    (model / SPLITS_FILE).symlink_to(run / "model" / SPLITS_FILE)
    with pytest.raises(ConfigError, match="split record"):
        SplitRecord.read(model)
