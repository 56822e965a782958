"""Compare finished runs: the config fields that differ, their final metrics, and their validation curves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dogclf.config import read_config_file
from dogclf.csvsafe import csv_text
from dogclf.data.splits import HELD_OUT, SplitRecord
from dogclf.errors import ConfigError
from dogclf.fsutil import atomic_write_text, read_bounded
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
MAX_RUN_FILE_BYTES = 16 << 20  # summary.json and metrics.jsonl of a long run are well under 1 MiB


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
    """A run file as text: bounded, not through a symbolic link, UTF-8."""
    if not path.is_file() and not path.is_symlink():
        raise ConfigError(f"{path} not found: {what}")
    raw = read_bounded(path, MAX_RUN_FILE_BYTES, "run file", follow_links=False)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); the file is corrupt") from None


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not JSON ({exc.msg}); the run's file is corrupt") from None
    except (ValueError, RecursionError):  # an integer past the digit limit; nesting deeper than the stack
        raise ConfigError(f"{where}: not JSON dogclf can read (a huge number or deep nesting)") from None


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _record(doc: Any, where: str) -> dict[str, Any]:
    """One metrics.jsonl record: an object; with a `valid` phase, an integer epoch and numeric loss and top1."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a JSON object per line, got {type(doc).__name__}")
    if "valid" not in doc:
        return doc
    epoch, valid = doc.get("epoch"), doc["valid"]
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        raise ConfigError(f"{where}: a record with `valid` needs an integer `epoch`, got {epoch!r:.40}")
    if not isinstance(valid, dict) or not all(_is_number(valid.get(k)) for k in ("loss", "top1")):
        raise ConfigError(f"{where}: `valid` must be an object whose loss and top1 are numbers")
    return doc


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl as records; a bad line is an error naming file and line."""
    records = []
    for number, line in enumerate(_read(path, "the run has no per-epoch metrics").splitlines(), 1):
        if line.strip():
            records.append(_record(_json(line, f"{path}:{number}"), f"{path}:{number}"))
    return records


def load_run(root: str | Path, name: str | None = None) -> RunRecord:
    """Read RUN/config.yaml, RUN/summary.json and RUN/metrics.jsonl; missing or corrupt files name themselves.

    Each file is read up to MAX_RUN_FILE_BYTES and never through a symbolic link; config.yaml as every config.
    """
    paths = RunPaths(Path(root))
    if not paths.config.is_file() and not paths.config.is_symlink():
        raise ConfigError(
            f"{paths.config} not found: {root} is not a dogclf run folder (give runs/NAME folders of finished runs)"
        )
    config = read_config_file(paths.config, follow_links=False)
    summary = _json(_read(paths.summary, "the run did not finish (no summary)"), str(paths.summary))
    if not isinstance(summary, dict):
        raise ConfigError(f"{paths.summary}: expected a mapping, got {type(summary).__name__}; the file is corrupt")
    flat_summary = flatten(summary)
    metrics = {column: flat_summary.get(field) for column, field in METRICS}
    for column, field in METRICS:
        if not _is_number(metrics[column]):
            raise ConfigError(
                f"{paths.summary}: {field} is a {type(metrics[column]).__name__}, not a number; the file is corrupt"
            )
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
    return value if isinstance(value, str) else json.dumps(value, default=str)


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
    """compare.csv: run, path, the differing config fields, then the metrics (strings formula-escaped)."""
    header = ["run", "path", *c.keys, *[m for m, _ in METRICS]]
    plain = (str, int, float)
    rows = [
        ["" if v is None else v if isinstance(v, plain) else json.dumps(v, default=str) for v in row.values()]
        for row in c.rows()
    ]
    return csv_text(header, rows)


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
    """Write out_dir/compare.png, then out_dir/compare.csv, each atomically; the CSV text is made first."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = comparison_csv(c)
    png = plot_comparison(c, out / "compare.png")
    return atomic_write_text(out / "compare.csv", text), png
