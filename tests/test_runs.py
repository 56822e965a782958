"""`dogclf runs compare`: differing config fields, final metrics, compare.csv and compare.png of real runs."""

from __future__ import annotations

import csv
import json
import os
import re
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
        ("summary.json", "{oops", "{run}/summary.json: not JSON"),
        ("summary.json", "[1]", "{run}/summary.json: expected a mapping, got list"),
        ("config.yaml", "a: [", "config file {run}/config.yaml is not valid YAML"),
        ("metrics.jsonl", '{"epoch": 1}\n{bad\n', "{run}/metrics.jsonl:2: not JSON"),
    ],
)
def test_corrupt_run_files_name_themselves(tiny_run, tmp_path, name, text, message):
    run = shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("model", "check*"))
    compare_runs([tiny_run, run])  # intact: fine
    (run / name).write_text(text)
    with pytest.raises(ConfigError, match="^" + re.escape(message.format(run=run))):
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


def _copy(tiny_run, where):
    return shutil.copytree(tiny_run, where, ignore=shutil.ignore_patterns("model", "check*"))


LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
DEEP = "[" * 100_000 + "]" * 100_000
VALID = '"valid": {"loss": 1.0, "top1": 0.5}}\n'


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("config.yaml", LAUGHS, "config file {run}/config.yaml is not valid YAML/JSON: more than 100000 values"),
        ("config.yaml", "a: &a [1, *a]\n", "config file {run}/config.yaml is not valid YAML/JSON: a recursive alias"),
        ("config.yaml", b"optim: {lr: \xff}\n", "config file {run}/config.yaml is not UTF-8 text"),
        ("summary.json", b'{"a": "\xff"}', "{run}/summary.json: not UTF-8 text"),
        ("metrics.jsonl", b"\xfe\n", "{run}/metrics.jsonl: not UTF-8 text"),
        ("summary.json", DEEP, "{run}/summary.json: not JSON dogclf can read"),
        ("summary.json", '{"x": ' + "9" * 5000 + "}", "{run}/summary.json: not JSON dogclf can read"),
        ("metrics.jsonl", DEEP + "\n", "{run}/metrics.jsonl:1: not JSON dogclf can read"),
        ("metrics.jsonl", "[1]\n", "{run}/metrics.jsonl:1: expected a JSON object per line, got list"),
        ("metrics.jsonl", '"valid"\n', "{run}/metrics.jsonl:1: expected a JSON object per line, got str"),
        ("metrics.jsonl", "{" + VALID, "{run}/metrics.jsonl:1: a record with `valid` needs an integer `epoch`"),
        ("metrics.jsonl", '{"epoch": "1", ' + VALID, "{run}/metrics.jsonl:1: a record with `valid` needs"),
        ("metrics.jsonl", '{"epoch": 1, "valid": [1]}\n', "{run}/metrics.jsonl:1: `valid` must be an object"),
        ("metrics.jsonl", '{"epoch": 1, "valid": {"loss": "x"}}\n', "{run}/metrics.jsonl:1: `valid` must be"),
        (
            "summary.json",
            '{"metrics": {"valid_top1": "=1+1"}}',
            "{run}/summary.json: metrics.valid_top1 is a str, not a number",
        ),
        (
            "summary.json",
            '{"best_epoch": ' + "[" * 900 + "]" * 900 + "}",
            "{run}/summary.json: best_epoch is a list, not a number",
        ),
    ],
    ids=[
        "billion-laughs",
        "recursive-alias",
        "config-latin1",
        "summary-latin1",
        "metrics-latin1",
        "summary-deep",
        "summary-5000-digits",
        "metrics-deep",
        "record-list",
        "record-str",
        "valid-no-epoch",
        "valid-str-epoch",
        "valid-list",
        "valid-str-loss",
        "metric-str",
        "metric-deep-list",
    ],
)
def test_hostile_run_files_are_one_line_errors_and_leave_the_outputs_alone(tiny_run, tmp_path, name, content, message):
    run = _copy(tiny_run, tmp_path / "run")
    (run / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "compare.csv").write_text("earlier comparison\n")
    r = run_cli("runs", "compare", str(tiny_run), str(run), "-o", str(out), timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("dogclf: error: " + message.format(run=run)) and r.stderr.count("\n") == 1, r.stderr
    assert (out / "compare.csv").read_text() == "earlier comparison\n" and sorted(os.listdir(out)) == ["compare.csv"]


def test_healthy_aliases_and_records_without_valid_are_read(tiny_run, tmp_path):
    run = _copy(tiny_run, tmp_path / "run")
    with (run / "config.yaml").open("a") as f:
        f.write("shared: &s [1, 2]\nagain: *s\n")
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"note": "no valid phase"}\n')
    record = compare_runs([tiny_run, run]).runs[1]
    assert record.config["again"] == [1, 2] and record.history[-1] == {"note": "no valid phase"}


@pytest.mark.parametrize("name", ["config.yaml", "summary.json", "metrics.jsonl"])
def test_run_files_are_not_read_through_links(tiny_run, tmp_path, name):
    run = _copy(tiny_run, tmp_path / "run")
    elsewhere = tmp_path / f"elsewhere-{name}"
    (run / name).rename(elsewhere)
    (run / name).symlink_to(elsewhere)  # the same content, through a link out of the run
    with pytest.raises(ConfigError, match=f"{re.escape(str(run / name))} is a symbolic link"):
        compare_runs([tiny_run, run])


def test_oversized_metrics_file_is_refused_unread(tiny_run, tmp_path):
    from dogclf.runs import MAX_RUN_FILE_BYTES

    run = _copy(tiny_run, tmp_path / "run")
    with (run / "metrics.jsonl").open("r+b") as f:
        f.truncate(MAX_RUN_FILE_BYTES)  # sparse: at the limit it is still read (and parsed)
    with pytest.raises(ConfigError, match="metrics.jsonl:"):
        compare_runs([tiny_run, run])
    with (run / "metrics.jsonl").open("r+b") as f:
        f.truncate(MAX_RUN_FILE_BYTES + 1)
    with pytest.raises(ConfigError, match=f"run file {re.escape(str(run))}/metrics.jsonl is larger than 16 MiB"):
        compare_runs([tiny_run, run])


def test_compare_csv_escapes_formula_cells_and_keeps_numbers(tiny_run, other_run, tmp_path):
    run = _copy(tiny_run, tmp_path / "=evil")
    with (run / "config.yaml").open("a") as f:
        f.write("'@key': +cmd\n")
    r = run_cli("runs", "compare", str(run), str(other_run), "-o", str(tmp_path / "cmp"))
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "cmp" / "compare.csv", newline="") as f:
        header, evil, other = list(csv.reader(f))
    assert "'@key" in header and "@key" not in header
    assert evil[header.index("run")] == "'=evil" and evil[header.index("'@key")] == "'+cmd"
    assert other[header.index("run")] == "fast" and float(other[header.index("optim.lr")]) == 0.05
