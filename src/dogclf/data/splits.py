"""A run's split record (each file's split, path and content digest) and the held-out images it gives back.

Training writes MODEL/splits.json. evaluate, export (int8 calibration and the accuracy gate) and runs compare
read it: given the run's own data they use the recorded splits (new files take the recorded rule's split), and
refuse when an image the model trained on would be scored as valid or test; data that shares no image with the
record is an external test set.
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dogclf.data.discovery import DatasetLayout, Sample, discover
from dogclf.errors import ArtifactError, DatasetError
from dogclf.fsutil import file_sha256, read_bounded
from dogclf.system import cpu_count

log = logging.getLogger("dogclf")

SPLITS_FILE = "splits.json"
MAX_SPLITS_BYTES = 64 * 2**20  # about 500,000 files
HELD_OUT = ("valid", "test")
Source = Literal["run", "external", "unrecorded"]
_SHOWN = 5


def _short(names: list[str]) -> str:
    """The first few names, and how many more."""
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def file_digests(layout: DatasetLayout) -> dict[str, str]:
    """Relative path -> content digest (sha256, 16 hex digits) of every file of every split, read in threads."""
    samples = [s for split in layout.splits.values() for s in split]
    with ThreadPoolExecutor(min(8, 2 * cpu_count())) as pool:
        digests = list(pool.map(lambda s: file_sha256(s.path)[:16], samples))
    return {layout.relative(s): d for s, d in zip(samples, digests, strict=True)}


@dataclass(frozen=True)
class SplitRecord:
    """Which files (relative path -> content digest) were in each split, and the flat-folder rule if one split them."""

    files: dict[str, dict[str, str]]
    rule: dict[str, float | int] | None = None

    @classmethod
    def of(cls, layout: DatasetLayout, digests: dict[str, str] | None = None) -> SplitRecord:
        """The record of `layout` as it is now."""
        digests = digests if digests is not None else file_digests(layout)
        files = {
            split: {layout.relative(s): digests[layout.relative(s)] for s in v} for split, v in layout.splits.items()
        }
        return cls(files, layout.rule)

    def to_json(self) -> str:
        """splits.json text."""
        return json.dumps({"version": 1, "rule": self.rule, "files": self.files}, indent=1, sort_keys=True)

    @classmethod
    def read(cls, directory: Path) -> SplitRecord | None:
        """DIRECTORY/splits.json, or None when the model was saved without one."""
        path = directory / SPLITS_FILE
        if not path.is_file() and not path.is_symlink():
            return None
        text = read_bounded(path, MAX_SPLITS_BYTES, "a split record", follow_links=False)
        try:
            doc = json.loads(text.decode("utf-8"))
            files = {str(k): {str(p): str(d) for p, d in v.items()} for k, v in doc["files"].items()}
            return cls(files, doc.get("rule"))
        except (ValueError, KeyError, AttributeError, TypeError, RecursionError) as exc:
            raise ArtifactError(f"cannot read {path}: {exc}") from None

    def digest(self, split: str) -> str:
        """One digest of the split's files and contents: equal digests mean the same images."""
        entries = sorted(self.files.get(split, {}).items())
        return hashlib.sha256("\n".join(f"{p}\t{d}" for p, d in entries).encode()).hexdigest()[:16]


@dataclass
class ResolvedData:
    """The layout to use for a model on some data, where it came from, and what changed since training."""

    layout: DatasetLayout
    source: Source
    new: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def describe(self, split: str) -> str:
        """One line saying which images `split` holds, for printing beside the numbers."""
        n = len(self.layout.splits.get(split, []))
        if self.source == "external":
            return f"external test set: {n} images of {self.layout.root}, none of them in the model's split record"
        if self.source == "unrecorded":
            return (
                f"{split} split of {self.layout.root} ({n} images); the model has no split record to check it against"
            )
        changes = [
            f"{len(v)} {k}" for k, v in (("new", self.new), ("missing", self.missing), ("changed", self.changed))
        ]
        since = ", ".join(c for c in changes if not c.startswith("0 "))
        return f"the run's recorded {split} split ({n} images{'; since training: ' + since if since else ''})"


def resolve_data(data: str | Path, record: SplitRecord | None, external_all: bool = False) -> ResolvedData:
    """`data` split as the model's record says; external (or unrecorded) data keeps its own split.

    With `external_all`, every image of a flat external dataset is put in test (none was seen in training).
    """
    if record is None:
        log.warning("the model has no %s: %s is split with the default seed and fractions", SPLITS_FILE, data)
        return ResolvedData(discover(data), "unrecorded")
    rule = record.rule or {}
    layout = discover(
        data, float(rule.get("valid_fraction", 0.1)), float(rule.get("test_fraction", 0.1)), int(rule.get("seed", 0))
    )
    digests = file_digests(layout)
    known = {rel: (split, d) for split, files in record.files.items() for rel, d in files.items()}
    seen = {d for files in record.files.values() for d in files.values()}
    if not any(d in seen for d in digests.values()):  # same names alone do not make the same images
        if external_all and layout.split_from_flat:
            everything = sorted((s for v in layout.splits.values() for s in v), key=lambda s: s.path)
            layout.splits = {"train": [], "valid": [], "test": everything}
        return ResolvedData(layout, "external")
    if layout.split_from_flat:
        layout.splits = _as_recorded(layout, digests, known)
    _refuse_leaks(layout, digests, known, set(record.files.get("train", {}).values()))
    resolved = ResolvedData(
        layout,
        "run",
        new=sorted(rel for rel in digests if rel not in known),
        missing=sorted(rel for rel in known if rel not in digests),
        changed=sorted(rel for rel, d in digests.items() if rel in known and known[rel][1] != d),
    )
    for what in ("new", "missing", "changed"):
        names = getattr(resolved, what)
        if names:
            log.warning("%d %s file(s) in %s since the model was trained: %s", len(names), what, data, _short(names))
    return resolved


def _as_recorded(
    layout: DatasetLayout, digests: dict[str, str], known: dict[str, tuple[str, str]]
) -> dict[str, list[Sample]]:
    """Every unchanged recorded file in its recorded split; other files where the rule put them."""
    splits: dict[str, list[Sample]] = {name: [] for name in layout.splits}
    for split, samples in layout.splits.items():
        for s in samples:
            rel = layout.relative(s)
            recorded = known.get(rel)
            target = recorded[0] if recorded and recorded[1] == digests[rel] else split
            splits.setdefault(target, []).append(s)
    return {k: sorted(v, key=lambda s: s.path) for k, v in splits.items()}


def _refuse_leaks(
    layout: DatasetLayout, digests: dict[str, str], known: dict[str, tuple[str, str]], trained: set[str]
) -> None:
    """DatasetError when an image the model trained on (by content) sits in valid/test but was not recorded there."""
    leaks = [
        f"{rel} ({split})"
        for split in HELD_OUT
        for s in layout.splits.get(split, [])
        if digests[(rel := layout.relative(s))] in trained and known.get(rel) != (split, digests[rel])
    ]
    if leaks:
        raise DatasetError(
            f"{layout.root}: {len(leaks)} image(s) the model was trained on would be scored as held out: "
            f"{_short(leaks)}; restore the data as it was at training or evaluate on data the model never saw"
        )
