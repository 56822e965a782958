"""Training throughput: the dogclf trainer vs a plain reference loop, same model, data and machine, one run.

The reference is what the course notebooks do: torchvision ImageFolder with PIL's full-size decode, fp32,
NCHW, the same optimizer and batch size. dogclf adds JPEG draft decoding, bf16 autocast + channels_last
(where the CPU supports bf16) and its DataLoader settings.

    python benchmarks/bench_train.py                 # resnet50, 224 px, 500x375 JPEGs
    python benchmarks/bench_train.py --steps 3 --arch resnet18   # quick check
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms

from dogclf.config import build_config
from dogclf.data.dataset import default_workers
from dogclf.models import create_model
from dogclf.training import Callback, Trainer


def make_photos(
    root: Path, classes: int, per_class: int, size: tuple[int, int], eval_splits: dict[str, int] | None = None
) -> Path:
    """Photo-sized JPEGs (noise + gradients) in train and `eval_splits` ({split: per class}) class folders."""
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), *(eval_splits or {"valid": 2}).items()):
        for c in range(classes):
            folder = root / split / f"{c + 1:03d}.Breed_{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                base = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
                img = Image.fromarray(base).resize(size, Image.BILINEAR)
                img.save(folder / f"{i:04d}.jpg", quality=90)
    return root


def reference_loop(data: Path, arch: str, batch: int, steps: int, warmup: int, workers: int) -> float:
    """Plain PyTorch: ImageFolder + PIL decode, fp32 NCHW; returns images/second after warmup."""
    tf = transforms.Compose(
        [
            transforms.RandomResizedCrop(224),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    ds = torchvision.datasets.ImageFolder(str(data / "train"), tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)
    model = create_model(arch, len(ds.classes), weights=None, freeze="nothing")
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    seen, start = 0, None
    for i, (x, y) in enumerate(loader):
        if i == warmup:
            start = time.perf_counter()
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            seen += y.numel()
        if i + 1 >= warmup + steps:
            break
    return seen / (time.perf_counter() - start)


class _Throughput(Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.seen, self.start, self.end = warmup, 0, 0.0, 0.0

    def on_step_end(self, trainer, out) -> None:
        if out["step"] == self.warmup:
            self.start = time.perf_counter()
        elif out["step"] > self.warmup:
            self.seen += out["batch_size"]
            self.end = time.perf_counter()


def dogclf_loop(
    data: Path, arch: str, batch: int, steps: int, warmup: int, workers: int, out: Path
) -> tuple[float, str]:
    """The dogclf Trainer for one capped epoch; returns images/second after warmup and its runtime."""
    cfg = build_config(overrides={
        "data.root": str(data), "data.image_size": 224, "data.batch_size": batch, "data.num_workers": workers,
        "model.arch": arch, "model.weights": None, "model.freeze": "nothing", "optim.epochs": 1,
        "optim.max_steps_per_epoch": warmup + steps, "runtime.progress": False,
    })  # fmt: skip
    meter = _Throughput(warmup)
    trainer = Trainer(cfg, out, callbacks=[meter])
    trainer.fit()
    return meter.seen / (meter.end - meter.start), trainer.runtime.describe()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6, help="measured steps (after 2 warmup steps)")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    workers = default_workers(args.workers)
    warmup = 2
    per_class = (args.steps + warmup + 1) * args.batch_size // 4 + 1
    with tempfile.TemporaryDirectory() as tmp:
        data = make_photos(Path(tmp) / "data", classes=4, per_class=per_class, size=(500, 375))
        print(f"machine: {torch.get_num_threads()} torch threads, {workers} loader workers; {args.arch} 224 px, "
              f"batch {args.batch_size}, {args.steps} measured steps, 500x375 JPEGs")  # fmt: skip
        ours, runtime = dogclf_loop(data, args.arch, args.batch_size, args.steps, warmup, workers, Path(tmp) / "run")
        ref = reference_loop(data, args.arch, args.batch_size, args.steps, warmup, workers)
    print(f"reference loop (PIL full decode, fp32, NCHW): {ref:7.2f} img/s")
    print(f"dogclf trainer ({runtime}): {ours:7.2f} img/s")
    print(f"speedup: {ours / ref:.2f}x")


if __name__ == "__main__":
    main()
