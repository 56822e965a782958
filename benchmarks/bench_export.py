"""`dogclf export` wall time per format and precision, and the throughput of every backend on the result.

Each export runs as the user runs it (a `dogclf export` process, calibration and accuracy gate included); the
throughput is images/s of `backend.logits` on one batch, after warm-up, with the process's torch threads.
Without --model, a random-init model is trained for --epochs on a synthetic dataset (10 classes, 30 test
images each): a model with real accuracy to lose, though not a pretrained one. `--freeze backbone` trains a
head on random features (fast, but a random ResNet50's untrained batch norms give huge activations, harsh on
bf16 and int8); `--freeze nothing` trains the whole network, so activations are those of a trained model. The
precision rows compare eager bf16 and OpenVINO bf16 with eager fp32 on the test split (top-1 agreement).

    python benchmarks/bench_export.py                                   # resnet50, 224 px, batch 16
    python benchmarks/bench_export.py --arch resnet18 --size 112 --freeze nothing --epochs 6 --lr 0.003
    python benchmarks/bench_export.py --arch tiny_cnn --size 32 --seconds 1
    python benchmarks/bench_export.py --model RUN --data DATASET
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from dogclf.artifact import load_artifact
from dogclf.backends.load import load_backend
from dogclf.config import RuntimeConfig, build_config
from dogclf.data.synthetic import make_dataset
from dogclf.runtime import resolve_runtime

EXPORTS = [("openvino", False), ("openvino", True), ("onnx", False), ("onnx", True)]


def make_model(root: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """A synthetic dataset (40 train / 30 valid / 30 test images per class) and a head trained on it."""
    from dogclf.training import train

    data = make_dataset(root / "data", classes=10, per_class=40, size=args.size + args.size // 7, eval_per_class=30)
    cfg = build_config(overrides={
        "data.root": str(data), "data.image_size": args.size, "data.batch_size": 16, "data.num_workers": 0,
        "model.arch": args.arch, "model.weights": None, "model.freeze": args.freeze, "optim.epochs": args.epochs,
        "optim.lr": args.lr, "runtime.progress": False,
    })  # fmt: skip
    train(cfg, root / "run")
    return root / "run", data


def export(model: Path, data: Path, fmt: str, int8: bool) -> str:
    """Run `dogclf export` and return one summary row."""
    cmd = [sys.executable, "-m", "dogclf.cli.main", "-q", "export", str(model), "--format", fmt]
    cmd += ["--calibration-data", str(data)] + (["--int8", "--force"] if int8 else [])
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        return f"{fmt}-{'int8' if int8 else 'fp32'}: failed ({done.stderr.strip()[-200:]})"
    top1 = next((line.split()[1:3] for line in done.stdout.splitlines() if line.strip().startswith("top-1")), "")
    agreement = next((line.split()[-1] for line in done.stdout.splitlines() if "agreement" in line), "")
    return f"{fmt}-{'int8' if int8 else 'fp32'}: {seconds:.1f} s, top-1 eager/export {top1}, agreement {agreement}"


def precision_agreement(model: Path, data: Path, engine: str) -> str:
    """ENGINE at bf16 against eager fp32 on the test split, by the accuracy gate's own measure."""
    from dogclf.backends.select import Choice
    from dogclf.export.gate import measure

    check = measure(load_artifact(model), Choice(engine), data, "test", precision="bf16")
    return (
        f"{engine} bf16 vs eager fp32 on test (n={check.n}): top-1 {check.top1_reference:.4f} -> {check.top1:.4f}, "
        f"agreement {check.agreement:.2%}, max logit diff {check.max_logit_diff:.3g}"
    )


def throughput(model: Path, backend: str, precision: str, batch: int, seconds: float) -> float:
    """Images/s of the backend's forward pass on one batch, after two warm-up calls."""
    artifact = load_artifact(model)
    engine = load_backend(artifact, backend, resolve_runtime(RuntimeConfig(device="cpu", precision=precision)))
    size = artifact.preprocess.image_size
    images = torch.randn(batch, 3, size, size)
    engine.logits(images)
    engine.logits(images)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        engine.logits(images)
        done += batch
    return done / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="run or model folder (default: a random-weight model)")
    parser.add_argument("--data", type=Path, help="dataset of the model (calibration and gate)")
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0, help="measuring time per backend")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the synthetic model")
    parser.add_argument("--freeze", default="backbone", choices=["backbone", "nothing"],
                        help="backbone: train the head on random features; nothing: train the whole network "
                        "(batch-norm statistics learned, activations as in a trained model)")  # fmt: skip
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        model, data = (args.model, args.data) if args.model else make_model(Path(tmp), args)
        print(f"torch threads: {torch.get_num_threads()}")
        for fmt, int8 in EXPORTS:
            print(export(model, data, fmt, int8), flush=True)
        for engine in ("eager", "openvino"):
            print(precision_agreement(model, data, engine), flush=True)
        runs = [("eager", "fp32"), ("eager", "bf16"), ("openvino-fp32", "fp32"), ("openvino-fp32", "bf16")]
        runs += [("openvino-int8", "bf16"), ("onnx-fp32", "fp32"), ("onnx-int8", "fp32")]
        for backend, precision in runs:
            rate = throughput(model, backend, precision, args.batch, args.seconds)
            print(f"{backend:>14} {precision:>5}: {rate:7.1f} img/s (batch {args.batch})", flush=True)


if __name__ == "__main__":
    main()
