"""`dogclf train` as its own process: what it imports, its phase marks, and its heap frozen for a quick exit."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

from dogclf.cli.main import main
from dogclf.timings import ENV, parse_mark

OPTIONAL = ("smdebug", "mlflow", "optuna", "sagemaker", "tensorboard")
# Runs the CLI the way the console script does (main() without argv) and reports at interpreter exit.
REPORTING_CLI = (
    "import atexit, gc, json, runpy, sys\n"
    "def report():\n"
    f"    loaded = sorted(m for m in {OPTIONAL!r} if m in sys.modules)\n"
    "    state = {'frozen': gc.get_freeze_count(), 'gc_enabled': gc.isenabled(), 'loaded': loaded}\n"
    "    print('REPORT ' + json.dumps(state), file=sys.stderr)\n"
    "atexit.register(report)\n"
    "sys.argv = ['dogclf', *sys.argv[1:]]\n"
    "runpy.run_module('dogclf.cli.main', run_name='__main__')\n"
)


def _train_args(data, out) -> list[str]:
    return ["train", "--data", str(data), "--output", str(out), "--arch", "tiny_cnn", "--weights", "none",
            "--epochs", "2", "--batch-size", "8", "--image-size", "32", "--workers", "0"]  # fmt: skip


def _run(args: list[str], timings: bool):
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "MLFLOW_TRACKING_URI")}
    if timings:
        env[ENV] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", REPORTING_CLI, *args], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr
    report = next(line for line in proc.stderr.splitlines() if line.startswith("REPORT "))
    return json.loads(report.removeprefix("REPORT ")), proc.stderr


def test_train_without_tracking_loads_no_optional_library_and_marks_its_phases(tiny_data, tmp_path):
    report, stderr = _run([*_train_args(tiny_data, tmp_path / "run"), "--tracking", "none"], timings=True)
    assert report["loaded"] == []
    assert report["frozen"] > 0 and report["gc_enabled"]  # frozen for the exit, collecting during the run
    marks = [m for m in map(parse_mark, stderr.splitlines()) if m]
    phases = ["cli_start", "setup_done", "first_step", "epochs_done", "final_eval_start", "final_eval_done",
              "outputs_written", "train_end", "command_done"]  # fmt: skip
    assert [p for p, _ in marks] == phases
    assert [t for _, t in marks] == sorted(t for _, t in marks)


def test_default_train_loads_tensorboard_and_prints_no_marks(tiny_data, tmp_path):
    report, stderr = _run(_train_args(tiny_data, tmp_path / "run"), timings=False)
    assert report["loaded"] == ["tensorboard"]
    assert "[timing]" not in stderr


def test_main_called_with_argv_leaves_the_callers_heap_alone(tiny_data, tmp_path):
    frozen = gc.get_freeze_count()
    assert main(["-q", *_train_args(tiny_data, tmp_path / "run"), "--tracking", "none"]) == 0
    assert gc.get_freeze_count() == frozen and gc.isenabled()
