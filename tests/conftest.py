"""Shared fixtures: a tiny generated dataset, a tiny config and one trained tiny run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dogclf.config import RunConfig, build_config
from dogclf.data.synthetic import make_dataset

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config) -> None:
    """Under pytest-xdist, each worker (and the subprocesses it starts) gets its share of the cores for torch."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        from dogclf.system import cpu_count

        threads = max(1, cpu_count() // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items) -> None:
    """Files holding a test marked `slow` run first, longest first, so a long test never starts last on a worker.

    pytest-xdist (`--dist loadfile --no-loadscope-reorder`) hands out whole files in this order, each to the next
    free worker: the long ones start at once and the many short files even out the end. `slow(minutes=N)` is the
    writer's estimate of a test's length on one thread (1 when not given); only the order depends on it.
    """
    minutes: dict = {}
    for item in items:
        if (mark := item.get_closest_marker("slow")) is not None:
            minutes[item.path] = max(minutes.get(item.path, 0), mark.kwargs.get("minutes", 1))
    items.sort(key=lambda item: -minutes.get(item.path, 0))


def tiny_config(data: Path, **overrides) -> RunConfig:
    """A config that trains tiny_cnn at 32 px in about a second per epoch."""
    base = {
        "data.root": str(data), "data.image_size": 32, "data.batch_size": 8, "data.num_workers": 0,
        "model.arch": "tiny_cnn", "model.weights": None, "model.freeze": "full",
        "optim.epochs": 2, "optim.lr": 0.01, "runtime.progress": False, "runtime.threads": 1,
    }  # fmt: skip
    base.update(overrides)
    return build_config(overrides=base)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """3 classes x 12 train / 4 valid / 4 test images of 32 px."""
    return make_dataset(tmp_path_factory.mktemp("data") / "dogs", classes=3, per_class=12, size=32, eval_per_class=4)


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    """A finished training run of tiny_cnn on tiny_data (its model/ is a valid artifact)."""
    from dogclf.training import train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(tiny_config(tiny_data, **{"optim.epochs": 3}), out)
    return out


@pytest.fixture(scope="session")
def exported_model(tiny_run, tiny_data, tmp_path_factory) -> Path:
    """A copy of tiny_run's model folder with exports: openvino-int8 (calibrated on tiny_data's train split and
    gated on its test split), onnx-fp32 (parity-checked on it) and openvino-fp32 (no check)."""
    from dogclf.export import export_model

    model = tmp_path_factory.mktemp("exported") / "model"
    shutil.copytree(tiny_run / "model", model)
    with pytest.MonkeyPatch.context() as mp:  # OpenVINO's compiled-model cache, away from the user's
        mp.setenv("DOGCLF_MODEL_CACHE", str(tmp_path_factory.mktemp("model-cache")))
        export_model(model, "openvino", int8=True, calibration_data=tiny_data)
        export_model(model, "onnx", eval_data=tiny_data)
        export_model(model, "openvino")
    return model


def blank_dataset(root: Path, classes: int = 3, per_class: int = 4) -> Path:
    """The model's classes, but every image a flat grey: calibration data that does not represent the inputs."""
    from PIL import Image

    from dogclf.data.synthetic import breed_folder

    for split in ("train", "valid"):
        for label in range(classes):
            folder = root / split / breed_folder(label)
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (32, 32), (128, 128, 128)).save(folder / f"grey_{i}.png")
    return root


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None):
    """Run `python -m dogclf.cli.main ARGS` in a subprocess; returns CompletedProcess (text)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "dogclf.cli.main", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env,
    )  # fmt: skip
