"""TensorBoard event files of a tiny run, read back by tensorboard's own reader; the SageMaker folder; off is off."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import ROOT, run_cli, tiny_config
from dogclf.errors import DogclfError
from dogclf.sagemaker.environment import TENSORBOARD_DIR, SageMakerEnv
from dogclf.sagemaker.training import resolve
from dogclf.tracking import callbacks as tracking_callbacks
from dogclf.tracking.tensorboard import TensorBoardCallback, check_folder
from dogclf.training import train

STEP_TAGS = {"train/loss", "train/lr", "train/images_per_s"}
EPOCH_TAGS = {
    "epoch/train_loss",
    "epoch/train_top1",
    "epoch/valid_loss",
    "epoch/valid_top1",
    "epoch/valid_balanced_accuracy",
    "epoch/lr",
    "epoch/seconds",
}


def _events(folder):
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def tb_run(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("tb") / "run"
    result = train(tiny_config(tiny_data), out)
    return out, result


def test_run_writes_scalars_images_and_hparams_tensorboard_can_read(tb_run):
    out, result = tb_run
    acc = _events(out / "tensorboard")
    tags = acc.Tags()
    assert STEP_TAGS | EPOCH_TAGS <= set(tags["scalars"])
    assert "epoch/train_n" not in tags["scalars"]  # sample counts are not plotted
    assert "epoch/valid_top5" not in tags["scalars"]  # not applicable with 3 classes: left out, not plotted as 1.0
    steps = [e.step for e in acc.Scalars("train/loss")]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 2
    assert [e.step for e in acc.Scalars("epoch/valid_top1")] == [1, 2]
    assert acc.Scalars("epoch/valid_loss")[-1].value == pytest.approx(result.history[-1]["valid"]["loss"])
    assert {"plots/curves", "plots/confusion_valid", "plots/confusion_test"} <= set(tags["images"])
    image = acc.Images("plots/curves")[0]
    assert image.width > 100 and image.height > 100 and image.encoded_image_string.startswith(b"\x89PNG")
    hp = _events(out / "tensorboard" / "hparams")
    assert "hparam/valid_top1" in hp.Tags()["scalars"] and "hparam/test_top1" in hp.Tags()["scalars"]
    assert hp.Scalars("hparam/best_epoch")[0].value == result.best_epoch


def test_tracking_off_writes_no_tensorboard_and_imports_neither_tracker(tiny_data, tmp_path):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from conftest import tiny_config\n"
        "from dogclf.training import train\n"
        f"cfg = tiny_config(Path({str(tiny_data)!r}), **{{'optim.epochs': 1, 'tracking.tensorboard': False}})\n"
        f"train(cfg, {str(tmp_path / 'run')!r})\n"
        "print(sorted(m for m in ('mlflow', 'tensorboard') if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = f"{ROOT / 'src'}:{ROOT / 'tests'}"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "run" / "model").is_dir() and not (tmp_path / "run" / "tensorboard").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no mlruns/ or mlflow.db in the working folder


def _tensorboard_folder(env: SageMakerEnv, tmp_path) -> object:
    """The folder the TensorBoard callback of a job resolved in `env` writes to."""
    cfg, paths = resolve(["--data", str(tmp_path), "--output-data-dir", str(tmp_path / "run")], "train", env)
    cfg.tracking.tensorboard = True
    (callback,) = [c for c in tracking_callbacks.make_callbacks(cfg, paths) if isinstance(c, TensorBoardCallback)]
    return callback.folder


def test_sagemaker_job_writes_to_the_tensorboard_output_path(tmp_path):
    assert _tensorboard_folder(SageMakerEnv.from_environ({}), tmp_path) == tmp_path / "run" / "tensorboard"
    assert TENSORBOARD_DIR.as_posix() == "/opt/ml/output/tensorboard"  # what the estimator's config names
    job = {"SM_MODEL_DIR": str(tmp_path / "model"), "SM_OUTPUT_DIR": str(tmp_path / "output")}
    no_output = _tensorboard_folder(SageMakerEnv.from_environ(job), tmp_path)
    assert no_output == tmp_path / "run" / "tensorboard"  # no output folder: not a job
    (tmp_path / "output").mkdir()
    assert _tensorboard_folder(SageMakerEnv.from_environ(job), tmp_path) == tmp_path / "output" / "tensorboard"


def test_missing_tensorboard_warns_once_and_training_goes_on(monkeypatch, caplog, tiny_data):
    assert tracking_callbacks.tensorboard_available()
    monkeypatch.setattr(tracking_callbacks, "_warned", set())
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import fails as if not installed
    with caplog.at_level(logging.WARNING, logger="dogclf"):
        cfg = tiny_config(tiny_data)
        assert tracking_callbacks.make_callbacks(cfg) == []
        assert tracking_callbacks.make_callbacks(cfg) == []
    warnings = [r.getMessage() for r in caplog.records if "tensorboard is not installed" in r.getMessage()]
    assert len(warnings) == 1 and "tracking.tensorboard: false" in warnings[0]


def test_resume_refuses_a_symlinked_tensorboard_folder_and_writes_nothing_through_it(tiny_data, tmp_path):
    run, outside = tmp_path / "run", tmp_path / "outside"
    command = ("train", "--data", str(tiny_data), "-o", str(run), "--arch", "tiny_cnn", "--weights", "none",
               "--image-size", "32", "--epochs", "1", "--set", "data.num_workers=0")  # fmt: skip
    assert run_cli(*command, cwd=tmp_path).returncode == 0
    (run / "summary.json").unlink()  # as if stopped before the end: --resume on a finished run resumes nothing
    (run / "tensorboard").rename(outside)
    (run / "tensorboard").symlink_to(outside, target_is_directory=True)
    before = sorted(p.relative_to(outside) for p in outside.rglob("*"))
    r = run_cli(*command, "--resume", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    line = r.stderr.strip().splitlines()[-1]  # after the run's own log lines, one line of error
    assert line.startswith("dogclf: error: ") and "tensorboard is a symbolic link" in line, r.stderr[-2000:]
    assert sorted(p.relative_to(outside) for p in outside.rglob("*")) == before  # nothing written through it
    (run / "tensorboard").unlink()  # a real folder again: the same command resumes
    r = run_cli(*command, "--resume", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert any((run / "tensorboard").glob("events.out.tfevents.*"))


def test_check_folder_refuses_a_link_anywhere_below_and_passes_a_plain_folder(tmp_path):
    folder = tmp_path / "tensorboard"
    check_folder(folder)  # not there yet: the writer makes it
    (folder / "hparams").mkdir(parents=True)
    (folder / "events.out.tfevents.1").write_bytes(b"x")
    check_folder(folder)
    (tmp_path / "elsewhere").mkdir()
    (folder / "hparams" / "linked").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(DogclfError, match="hparams/linked is a symbolic link"):
        check_folder(folder)
    (folder / "hparams" / "linked").unlink()
    (tmp_path / "file").write_text("x")
    with pytest.raises(DogclfError, match="is not a folder"):
        check_folder(tmp_path / "file")
