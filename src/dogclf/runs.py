"""Compare finished runs: the config fields that differ, their final metrics, and their validation curves."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dogclf.data.splits import HELD_OUT, SplitRecord
from dogclf.errors import ConfigError
from dogclf.fsutil import atomic_write_text
from dogclf.training.resume import flatten
from dogclf.training.rundir import RunPaths

# (column, summary.json field): the final metrics each run reports.
METRICS = (
    ("valid_top1", "metrics.valid_top1"),
    ("valid_top5", "metrics.valid_top5"),
    ("valid_loss", "metrics.valid_loss"),
    ("test_top1", "metrics.test_top1"),
    ("test_top5", "metrics.test_top5"),
    ("test_loss", "metrics.test_loss"),
    ("best_epoch", "best_epoch"),
    ("epochs_run", "epochs_run"),
)


@dataclass(frozen=True)
class RunRecord:
    """What a run folder holds for comparing: flattened config, final metrics and per-epoch history."""

    name: str
    root: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    splits: dict[str, str] | None = None


def _read(path: Path, what: str) -> str:
    if not path.is_file():
        raise ConfigError(f"{path} not found: {what}")
    return path.read_text(encoding="utf-8")


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl as records; a bad line is an error naming file and line."""
    records = []
    for number, line in enumerate(_read(path, "the run has no per-epoch metrics").splitlines(), 1):
        try:
            record = json.loads(line) if line.strip() else None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{number}: not JSON ({exc.msg}); the run's metrics file is corrupt") from None
        if record is not None:
            records.append(record)
    return records


def load_run(root: str | Path, name: str | None = None) -> RunRecord:
    """Read RUN/config.yaml, RUN/summary.json and RUN/metrics.jsonl; missing or corrupt files name themselves."""
    paths = RunPaths(Path(root))
    config_text = _read(paths.config, f"{root} is not a dogclf run folder (give runs/NAME folders of finished runs)")
    try:
        config = yaml.safe_load(config_text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{paths.config}: not valid YAML ({' '.join(str(exc).split())})") from None
    try:
        summary = json.loads(_read(paths.summary, "the run did not finish (no summary)"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{paths.summary}: not JSON ({exc.msg}); the run's summary is corrupt") from None
    for path, doc in ((paths.config, config), (paths.summary, summary)):
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(doc).__name__}; the file is corrupt")
    flat_summary = flatten(summary)
    metrics = {column: flat_summary.get(field) for column, field in METRICS}
    record = SplitRecord.read(paths.model)
    splits = {split: record.digest(split) for split in HELD_OUT} if record is not None else None
    return RunRecord(name or paths.root.name, paths.root, flatten(config), metrics, _json_lines(paths.metrics), splits)


@dataclass(frozen=True)
class Comparison:
    """Runs side by side: the config keys whose values differ, and each run's final metrics."""

    runs: list[RunRecord]
    keys: list[str]

    def rows(self) -> list[dict[str, Any]]:
        """One row per run: run, path, the differing config fields, the metrics."""
        return [
            {"run": r.name, "path": str(r.root), **{k: r.config.get(k) for k in self.keys}, **r.metrics}
            for r in self.runs
        ]


def split_note(c: Comparison) -> str | None:
    """A warning when the runs' valid or test images differ (by their split records) or cannot be checked."""
    unrecorded = [r.name for r in c.runs if r.splits is None]
    if unrecorded:
        return f"note: {', '.join(unrecorded)} has no split record: whether the runs share valid/test images is unknown"
    differ = [split for split in HELD_OUT if len({(r.splits or {}).get(split) for r in c.runs}) > 1]
    if differ:
        return (
            f"note: the runs' {' and '.join(differ)} images differ (their split records): their {differ[0]} metrics "
            "are not measured on the same images"
        )
    return None


def compare_runs(roots: Sequence[str | Path]) -> Comparison:
    """Load the runs (at least two) and find the config fields that are not equal across all of them."""
    if len(roots) < 2:
        raise ConfigError(f"give at least two runs to compare, got {len(roots)}")
    names = [Path(r).name for r in roots]
    unique = len(set(names)) == len(names)
    runs = [load_run(r, n if unique else str(r)) for r, n in zip(roots, names, strict=True)]
    keys = sorted({k for r in runs for k in r.config})
    missing = object()
    differing = [k for k in keys if len({json.dumps(r.config.get(k, missing), default=str) for r in runs}) > 1]
    return Comparison(runs, differing)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return value if isinstance(value, str) else json.dumps(value)


def comparison_table(c: Comparison) -> str:
    """Fields as rows, runs as columns: differing config fields, then the final metrics."""
    header = ["", *[r.name for r in c.runs]]
    body = [[k, *[_cell(r.config.get(k)) for r in c.runs]] for k in c.keys]
    if not body:
        body = [["(configs equal)", *["" for _ in c.runs]]]
    body += [[m, *[_cell(r.metrics[m]) for r in c.runs]] for m, _ in METRICS]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *body]]
    lines.insert(1 + max(1, len(c.keys)), "")
    note = split_note(c)
    return "\n".join(lines + ([note] if note else [])) + "\n"


def comparison_csv(c: Comparison) -> str:
    """compare.csv: run, path, the differing config fields, then the metrics."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["run", "path", *c.keys, *[m for m, _ in METRICS]], lineterminator="\n")
    writer.writeheader()
    for row in c.rows():
        writer.writerow(
            {k: "" if v is None else v if isinstance(v, str | int | float) else json.dumps(v) for k, v in row.items()}
        )
    return buffer.getvalue()


def plot_comparison(c: Comparison, out: Path) -> Path:
    """Validation loss and top-1 per epoch, one line per run."""
    from dogclf.plots import save_figure, subplots

    fig, (ax_loss, ax_acc) = subplots(1, 2, figsize=(10, 4))
    for run in c.runs:
        epochs = [r["epoch"] for r in run.history if "valid" in r]
        valid = [r["valid"] for r in run.history if "valid" in r]
        ax_loss.plot(epochs, [v.get("loss") for v in valid], marker="o", label=run.name)
        ax_acc.plot(epochs, [v.get("top1") for v in valid], marker="o", label=run.name)
    ax_loss.set(title="valid loss", xlabel="epoch")
    ax_acc.set(title="valid top-1 accuracy", xlabel="epoch", ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, out)


def write_comparison(c: Comparison, out_dir: str | Path) -> tuple[Path, Path]:
    """Write out_dir/compare.csv and out_dir/compare.png."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out / "compare.csv", comparison_csv(c)), plot_comparison(c, out / "compare.png")
