"""ImageFolder discovery: splits, class names and (for flat folders) a split by a seeded hash of each path."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from dogclf.data.images import is_image_file
from dogclf.errors import DatasetError

SPLITS = ("train", "valid", "test")
SPLIT_ALIASES = {"train": ("train", "training"), "valid": ("valid", "val", "validation"), "test": ("test",)}
_PREFIX = re.compile(r"^\d+[._\- ]+")


def class_name(folder: str) -> str:
    """'001.Affenpinscher' -> 'Affenpinscher'; folders without a numeric prefix keep their name."""
    return _PREFIX.sub("", folder) or folder


@dataclass(frozen=True)
class Sample:
    """One labelled image file."""

    path: Path
    label: int


@dataclass
class DatasetLayout:
    """The discovered dataset: class folders (in label order) and the samples of each split."""

    root: Path
    class_folders: list[str]
    splits: dict[str, list[Sample]] = field(default_factory=dict)
    split_from_flat: bool = False
    rule: dict[str, float | int] | None = None

    @property
    def classes(self) -> list[str]:
        """Class names in label order, numeric folder prefixes stripped."""
        return [class_name(f) for f in self.class_folders]

    def counts(self) -> dict[str, list[int]]:
        """Images per class, per split."""
        out = {}
        for split, samples in self.splits.items():
            counts = [0] * len(self.class_folders)
            for s in samples:
                counts[s.label] += 1
            out[split] = counts
        return out

    def without(self, bad: set[Path]) -> DatasetLayout:
        """A copy without the given files."""
        splits = {k: [s for s in v if s.path not in bad] for k, v in self.splits.items()}
        return DatasetLayout(self.root, self.class_folders, splits, self.split_from_flat, self.rule)

    def relative(self, sample: Sample) -> str:
        """The sample's path relative to the dataset root, with forward slashes."""
        return sample.path.relative_to(self.root).as_posix()


def _class_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))


def _find_split_dirs(root: Path) -> dict[str, Path]:
    found = {}
    for split, aliases in SPLIT_ALIASES.items():
        for alias in aliases:
            if (root / alias).is_dir():
                found[split] = root / alias
                break
    return found


def _check_same_classes(per_split: dict[str, list[str]]) -> list[str]:
    reference = per_split["train"]
    problems = []
    for split, folders in per_split.items():
        missing = sorted(set(reference) - set(folders))
        extra = sorted(set(folders) - set(reference))
        if missing:
            problems.append(f"{split} lacks {missing}")
        if extra:
            problems.append(f"{split} has extra {extra}")
    return problems


def discover(root: str | Path, valid_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0) -> DatasetLayout:
    """Find `root/{train,valid,test}/<class>/*` or split a flat `root/<class>/*` folder."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    split_dirs = _find_split_dirs(root)
    if not split_dirs:
        return _split_flat(root, valid_fraction, test_fraction, seed)
    if "train" not in split_dirs or "valid" not in split_dirs:
        missing = [s for s in ("train", "valid") if s not in split_dirs]
        raise DatasetError(f"{root}: missing split folder(s) {missing}; expected train/ valid/ [test/]")
    per_split = {split: _class_dirs(path) for split, path in split_dirs.items()}
    problems = _check_same_classes(per_split)
    if problems:
        raise DatasetError(f"{root}: class folders differ between splits: " + "; ".join(problems))
    folders = per_split["train"]
    if not folders:
        raise DatasetError(f"{split_dirs['train']}: no class folders")
    layout = DatasetLayout(root, folders)
    for split, path in split_dirs.items():
        layout.splits[split] = [
            Sample(img, label) for label, folder in enumerate(folders) for img in _images(path / folder)
        ]
    empty = [folders[i] for i, n in enumerate(layout.counts()["train"]) if n == 0]
    if empty:
        raise DatasetError(f"{split_dirs['train']}: class folder(s) without images: {empty}")
    return layout


def split_position(seed: int, relative: str) -> float:
    """Where a file falls in [0, 1): a seeded hash of its path, so a file's split never depends on the others."""
    digest = hashlib.sha256(f"{seed}\0{relative}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _assign(ranked: list[tuple[float, Path]], valid_fraction: float, test_fraction: float) -> dict[str, list[Path]]:
    """Valid below valid_fraction, test below valid+test fraction, train above; by rank when a split is empty."""
    cut = valid_fraction + test_fraction
    parts = {
        "valid": [p for u, p in ranked if u < valid_fraction],
        "test": [p for u, p in ranked if valid_fraction <= u < cut],
        "train": [p for u, p in ranked if u >= cut],
    }
    if parts["valid"] and parts["train"] and (parts["test"] or test_fraction == 0):
        return parts
    # Too few images for the fractions to fill every split: the lowest positions fill valid, then test.
    files = [p for _, p in ranked]
    n_valid = max(1, round(len(files) * valid_fraction))
    n_test = max(1 if test_fraction > 0 else 0, round(len(files) * test_fraction))
    return {"valid": files[:n_valid], "test": files[n_valid : n_valid + n_test], "train": files[n_valid + n_test :]}


def _split_flat(root: Path, valid_fraction: float, test_fraction: float, seed: int) -> DatasetLayout:
    """Each file's split is decided by split_position(seed, its relative path): adding images moves no other."""
    folders = _class_dirs(root)
    if not folders:
        raise DatasetError(f"{root}: neither train/ valid/ split folders nor class folders found")
    rule = {"seed": seed, "valid_fraction": valid_fraction, "test_fraction": test_fraction}
    layout = DatasetLayout(root, folders, {s: [] for s in SPLITS}, split_from_flat=True, rule=rule)
    for label, folder in enumerate(folders):
        files = _images(root / folder)
        if len(files) < 3:
            raise DatasetError(f"{root / folder}: {len(files)} image(s); at least 3 are needed to split")
        ranked = sorted((split_position(seed, p.relative_to(root).as_posix()), p) for p in files)
        for split, chosen in _assign(ranked, valid_fraction, test_fraction).items():
            layout.splits[split].extend(Sample(p, label) for p in sorted(chosen))
    return layout
