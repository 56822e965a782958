"""`dogclf runs compare`: differing config fields, final metrics, compare.csv and compare.png of real runs."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from conftest import run_cli, tiny_config
from dogclf.data.splits import SPLITS_FILE
from dogclf.errors import ConfigError
from dogclf.runs import METRICS, compare_runs, comparison_table

METRIC_NAMES = [m for m, _ in METRICS]


@pytest.fixture(scope="module")
def other_run(tiny_data, tmp_path_factory):
    """tiny_run's settings but optim.lr 0.05."""
    from dogclf.training import train

    out = tmp_path_factory.mktemp("runs") / "fast"
    train(tiny_config(tiny_data, **{"optim.epochs": 3, "optim.lr": 0.05}), out)
    return out


def test_compare_lists_only_differing_fields_and_writes_csv_and_png(tiny_run, other_run, tmp_path):
    r = run_cli("runs", "compare", str(tiny_run), str(other_run), "-o", str(tmp_path / "cmp"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["tiny", "fast"]
    assert lines[1].split() == ["optim.lr", "0.0100", "0.0500"]
    assert not any(line.startswith(("optim.epochs", "model.arch", "data.root")) for line in lines)  # equal: hidden
    shown = {line.split()[0] for line in lines if line.strip()}
    assert set(METRIC_NAMES) <= shown
    with open(tmp_path / "cmp" / "compare.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["run", "path", "optim.lr", *METRIC_NAMES]
    assert [(row["run"], float(row["optim.lr"]), row["epochs_run"]) for row in rows] == [
        ("tiny", 0.01, "3"),
        ("fast", 0.05, "3"),
    ]
    assert 0 <= float(rows[0]["valid_top1"]) <= 1
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_equal_configs_say_so_and_same_names_use_paths(tiny_run, tmp_path):
    copy = shutil.copytree(tiny_run, tmp_path / "x" / tiny_run.name, ignore=shutil.ignore_patterns("model", "check*"))
    comparison = compare_runs([tiny_run, copy])
    assert comparison.keys == []
    assert [r.name for r in comparison.runs] == [str(tiny_run), str(copy)]
    assert "(configs equal)" in comparison_table(comparison)


def test_not_a_run_is_one_line_exit_2(tiny_run, tmp_path):
    r = run_cli("runs", "compare", str(tiny_run), str(tmp_path), "-o", "")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (
        f"dogclf: error: {tmp_path}/config.yaml not found: {tmp_path} is not a dogclf run folder "
        "(give runs/NAME folders of finished runs)"
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("summary.json", "{oops", "summary.json: not JSON"),
        ("summary.json", "[1]", "summary.json: expected a mapping, got list"),
        ("config.yaml", "a: [", "config.yaml: not valid YAML"),
        ("metrics.jsonl", '{"epoch": 1}\n{bad\n', "metrics.jsonl:2: not JSON"),
    ],
)
def test_corrupt_run_files_name_themselves(tiny_run, tmp_path, name, text, message):
    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("model", "check*"))
    compare_runs([tiny_run, run])  # intact: fine
    (run / name).write_text(text)
    with pytest.raises(ConfigError, match=f"^{run}/{message}"):
        compare_runs([tiny_run, run])


def test_one_run_is_not_a_comparison(tiny_run):
    with pytest.raises(ConfigError, match="at least two runs"):
        compare_runs([tiny_run])


def test_runs_on_different_held_out_images_are_flagged(tiny_run, other_run, tmp_path):
    assert "note:" not in comparison_table(compare_runs([tiny_run, other_run]))  # same split folders: silent
    moved = shutil.copytree(other_run, tmp_path / "moved")
    record = json.loads((moved / "model" / SPLITS_FILE).read_text())
    victim = sorted(record["files"]["test"])[0]
    record["files"]["train"][victim] = record["files"]["test"].pop(victim)
    (moved / "model" / SPLITS_FILE).write_text(json.dumps(record))
    table = comparison_table(compare_runs([tiny_run, moved]))
    assert "note: the runs' test images differ" in table and "valid and test" not in table
    (moved / "model" / SPLITS_FILE).unlink()
    assert "moved has no split record" in comparison_table(compare_runs([tiny_run, moved]))
