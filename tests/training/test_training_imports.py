"""Import boundaries: the metric contract loads no torch, the loop knows no plug-ins, callbacks see a context."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import tiny_config
from dogclf.training import Callback, TrainContext, train
from dogclf.training.resume import RESUME_FREE, RUN_RESUME_FREE, config_differences


def _modules_after(statement: str, baseline: str = "import dogclf.config") -> list[str]:
    """dogclf.debug/dogclf.profile/torch modules `statement` loads beyond what `baseline` already loaded."""
    code = (
        f"import sys\n{baseline}\nbefore = set(sys.modules)\n{statement}\n"
        "new = set(sys.modules) - before\n"
        "print(' '.join(sorted(m for m in new if m == 'torch' or m.startswith(('dogclf.debug', 'dogclf.profile')))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_metric_contract_imports_no_torch():
    assert _modules_after("import dogclf.training.metrics", baseline="") == []
    assert "torch" in _modules_after("import dogclf.running_metrics", baseline="")  # the check sees torch


def test_the_loop_imports_no_plug_in():
    # dogclf.config holds the debug/profile config schemas; the loop must add none of their code.
    loaded = _modules_after("import dogclf.training.loop")
    assert "torch" in loaded
    assert [m for m in loaded if m != "torch"] == []
    assert "dogclf.profile.callbacks" in _modules_after("import dogclf.workflow, dogclf.profile.callbacks")


class _Recorder(Callback):
    """Records what it was given at each event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object, int, int]] = []

    def _see(self, event: str, ctx: TrainContext) -> None:
        self.events.append((event, ctx, ctx.global_step, ctx.epoch))

    def on_train_start(self, ctx):
        self._see("train_start", ctx)

    def on_step_end(self, ctx, out):
        self._see("step_end", ctx)

    def on_epoch_end(self, ctx, record):
        self._see("epoch_end", ctx)

    def on_train_end(self, ctx, result):
        self._see("train_end", ctx)


def test_callbacks_get_the_typed_context(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, **{"optim.epochs": 1, "optim.max_steps_per_epoch": 3})
    rec = _Recorder()
    train(cfg, tmp_path / "run", callbacks=[rec])
    ctx = rec.events[0][1]
    assert isinstance(ctx, TrainContext) and all(e[1] is ctx for e in rec.events)
    assert ctx.run_root == tmp_path / "run" and ctx.config is cfg and ctx.is_main
    assert ctx.steps_per_epoch == 3 and ctx.workers == 0 and len(ctx.class_names) == 3
    assert ctx.class_counts["train"] == [12, 12, 12]
    assert ctx.runtime.device.type == "cpu" and not ctx.stop_requested
    assert [(e, step, epoch) for e, _, step, epoch in rec.events] == [
        ("train_start", 0, 0),
        ("step_end", 1, 1),
        ("step_end", 2, 1),
        ("step_end", 3, 1),
        ("epoch_end", 3, 1),
        ("train_end", 3, 1),
    ]


class _StopAfter(Callback):
    """Requests a stop at step `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, ctx, out):
        if out["step"] == self.step:
            ctx.request_stop()


@pytest.mark.parametrize(("stop_at", "epochs_run"), [(2, 1), (None, 3)])
def test_request_stop_ends_training(tiny_data, tmp_path, stop_at, epochs_run):
    cfg = tiny_config(tiny_data, **{"optim.epochs": 3, "optim.max_steps_per_epoch": 2})
    result = train(cfg, tmp_path / "run", callbacks=[_StopAfter(stop_at)] if stop_at else [])
    assert len(result.history) == epochs_run


def test_one_resume_rule():
    saved = {"name": "a", "data": {"root": "/x", "batch_size": 8}, "runtime": {"device": "cpu", "seed": 0}}
    moved = {"name": "b", "data": {"root": "/y", "batch_size": 8}, "runtime": {"device": "cuda", "seed": 0}}
    assert config_differences(saved, moved) == []  # a run may move to other hardware
    assert config_differences(saved, moved, RESUME_FREE) == ["runtime.device: 'cpu' -> 'cuda'"]  # a study not
    reseeded = {**saved, "runtime": {"device": "cpu", "seed": 1}, "data": {"root": "/x", "batch_size": 4}}
    assert config_differences(saved, reseeded) == ["data.batch_size: 8 -> 4", "runtime.seed: 0 -> 1"]
    assert set(RESUME_FREE) < set(RUN_RESUME_FREE)
