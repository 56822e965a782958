"""TensorBoard event files of a run: step and epoch scalars, the run's plots as images, hparams with final metrics."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogclf.errors import DogclfError
from dogclf.training.callbacks import Callback, TrainContext
from dogclf.training.resume import flatten
from dogclf.training.rundir import RunPaths

if TYPE_CHECKING:
    from dogclf.config import RunConfig
    from dogclf.training.result import TrainResult

log = logging.getLogger("dogclf")

HPARAM_SECTIONS = ("data", "model", "optim")
COUNTS = ("n",)  # sample counts in the metric records: not curves worth plotting
_STEP_TIMES = ("data_time", "forward_time", "backward_time", "optimizer_time")


def check_folder(folder: Path) -> None:
    """Refuse a TensorBoard folder that is, or holds, a symbolic link: writes would land outside the run."""
    link = folder if folder.is_symlink() else next(_links(folder), None)
    if link is not None:
        raise DogclfError(
            f"{link} is a symbolic link; dogclf writes TensorBoard files only inside the run folder: remove it "
            "(or turn TensorBoard off with --set tracking.tensorboard=false)"
        )
    if folder.exists() and not folder.is_dir():
        raise DogclfError(f"{folder} is not a folder; move it away to log TensorBoard files there")


def _links(folder: Path) -> Iterator[Path]:
    """Symbolic links anywhere below `folder` (os.walk does not follow them)."""
    for parent, dirs, files in os.walk(folder):
        yield from (Path(parent, name) for name in (*dirs, *files) if Path(parent, name).is_symlink())


def hparams(cfg: RunConfig) -> dict[str, Any]:
    """The data/model/optim settings as TensorBoard hparams (scalars and strings; unset ones left out)."""
    flat = flatten(cfg.model_dump(mode="json", include=set(HPARAM_SECTIONS)))
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if key == "data.root" or value is None:
            continue
        out[key] = value if isinstance(value, bool | int | float | str) else str(value)
    return out


def final_metrics(result: TrainResult) -> dict[str, float]:
    """hparam/ metrics of a finished run: best epoch's valid metrics and test (when evaluated)."""
    metrics = {f"hparam/valid_{k}": float(v) for k, v in result.valid.items() if v is not None}
    metrics.update({f"hparam/test_{k}": float(v) for k, v in (result.test or {}).items() if v is not None})
    metrics["hparam/best_epoch"] = float(result.best_epoch)
    return metrics


def _png(path: Path) -> Any:
    """An RGB image array (H, W, 3) of a PNG file."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


class TensorBoardCallback(Callback):
    """Writes the run's scalars, plots and hparams with torch's SummaryWriter (rank 0 only)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder  # default: the run's RunPaths.tensorboard
        self.writer: Any = None

    def on_train_start(self, ctx: TrainContext) -> None:
        """Open the event file writer (a resumed run appends a new file to the same folder)."""
        if not ctx.is_main:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.folder = self.folder or RunPaths(ctx.run_root).tensorboard
        check_folder(self.folder)
        self.writer = SummaryWriter(log_dir=str(self.folder))
        log.info("tensorboard: %s", self.folder)

    def on_step_end(self, ctx: TrainContext, out: dict[str, Any]) -> None:
        """train/loss, train/lr and train/images_per_s of the step."""
        if self.writer is None:
            return
        step = out["step"]
        self.writer.add_scalar("train/loss", out["loss"], step)
        if "lr" in out:
            self.writer.add_scalar("train/lr", out["lr"], step)
        seconds = sum(out.get(k, 0.0) for k in _STEP_TIMES)
        if seconds > 0:
            self.writer.add_scalar("train/images_per_s", out["batch_size"] / seconds, step)

    def on_epoch_end(self, ctx: TrainContext, record: dict[str, Any]) -> None:
        """epoch/{train,valid}_{loss,top1,top5}, epoch/lr and epoch/seconds; flushed so a crash keeps them."""
        if self.writer is None:
            return
        epoch = record["epoch"]
        for phase in ("train", "valid"):
            for name, value in record.get(phase, {}).items():
                if name in COUNTS or value is None:  # None: not applicable (top-5 with 5 classes or fewer)
                    continue
                self.writer.add_scalar(f"epoch/{phase}_{name}", value, epoch)
        self.writer.add_scalar("epoch/lr", record["lr"], epoch)
        self.writer.add_scalar("epoch/seconds", record["seconds"], epoch)
        self.writer.flush()

    def on_train_end(self, ctx: TrainContext, result: TrainResult) -> None:
        """The curves and confusion PNGs the run wrote, and hparams with the final metrics; then close."""
        if self.writer is None:
            return
        step = ctx.global_step
        for png in sorted(RunPaths(ctx.run_root).plots.glob("*.png")):
            self.writer.add_image(f"plots/{png.stem}", _png(png), step, dataformats="HWC")
        if result.valid:
            self.writer.add_hparams(hparams(ctx.config), final_metrics(result), run_name="hparams")
        self.writer.close()
        self.writer = None
