"""ImageFolder discovery, class names, split consistency and flat-folder splitting."""

import shutil

import pytest

from dogclf.data import discover, scan_dataset
from dogclf.data.discovery import class_name
from dogclf.data.synthetic import make_dataset
from dogclf.errors import DatasetError


def test_class_names_drop_numeric_prefix():
    assert class_name("001.Affenpinscher") == "Affenpinscher"
    assert class_name("Beagle") == "Beagle"
    assert class_name("12_Golden") == "Golden"


def test_discovers_splits_and_labels(tiny_data):
    layout = discover(tiny_data)
    assert layout.class_folders == ["001.Affenpinscher", "002.Afghan_hound", "003.Airedale_terrier"]
    assert layout.counts() == {"train": [12, 12, 12], "valid": [4, 4, 4], "test": [4, 4, 4]}
    assert all(layout.class_folders[s.label] in s.path.parts for s in layout.splits["valid"])


def test_class_mismatch_between_splits_lists_differences(tmp_path):
    root = make_dataset(tmp_path / "d", classes=3, per_class=2, size=16)
    shutil.rmtree(root / "valid" / "002.Afghan_hound")
    (root / "test" / "999.Extra").mkdir()
    with pytest.raises(DatasetError) as err:
        discover(root)
    msg = str(err.value)
    assert "valid lacks ['002.Afghan_hound']" in msg and "test has extra ['999.Extra']" in msg


def test_flat_folder_split_is_stratified_and_seeded(tmp_path):
    src = make_dataset(tmp_path / "d", classes=3, per_class=20, size=16)
    flat = tmp_path / "flat"
    shutil.copytree(src / "train", flat)
    a, b = discover(flat, 0.2, 0.1, seed=3), discover(flat, 0.2, 0.1, seed=3)
    assert a.split_from_flat and a.rule == {"seed": 3, "valid_fraction": 0.2, "test_fraction": 0.1}
    counts = a.counts()
    assert all(n >= 1 for split in counts.values() for n in split)  # every class in every split
    assert 6 <= sum(counts["valid"]) <= 18 and 2 <= sum(counts["test"]) <= 12  # 12 and 6 expected of 60
    assert a.splits == b.splits
    assert discover(flat, 0.2, 0.1, seed=4).splits != a.splits
    all_paths = [s.path for split in a.splits.values() for s in split]
    assert len(all_paths) == len(set(all_paths)) == 60


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found: .*nope"):
        discover(tmp_path / "nope")


def test_fingerprint_changes_with_content(tmp_path):
    root = make_dataset(tmp_path / "d", classes=2, per_class=3, size=16)
    before = scan_dataset(discover(root)).fingerprint
    victim = next((root / "train").rglob("*.jpg"))
    victim.write_bytes(next((root / "valid").rglob("*.jpg")).read_bytes())
    assert scan_dataset(discover(root)).fingerprint != before


def test_synthetic_dataset_is_deterministic(tmp_path):
    a = make_dataset(tmp_path / "a", classes=2, per_class=3, size=16, seed=5)
    b = make_dataset(tmp_path / "b", classes=2, per_class=3, size=16, seed=5)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)
    with pytest.raises(DatasetError, match="not empty"):
        make_dataset(a, classes=2, per_class=3, size=16)
