"""Whole runs: `dogclf train` against the course's train_model.py, each timed as a process from spawn to exit.

Both train the same frozen-backbone model (random init, new classifier) for the same epochs on the same
generated photo-sized JPEGs, validate each epoch and test once at the end. The wall time is what a user waits
for: interpreter start, imports, data, model, epochs, the final evaluation, writing the outputs and the exit.
For dogclf, DOGCLF_TIMINGS=1 makes the trainer print phase marks, which split that time; the cost of importing
torch and torchvision is measured by a separate `python -c "import torch, torchvision"`.

    python benchmarks/bench_run.py                      # resnet50, 224 px, 300 train / 40 valid / 40 test
    python benchmarks/bench_run.py --arch resnet18 --image-size 64 --train-per-class 16   # quick check
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class ProcessRun:
    """One timed process: wall seconds, and when (seconds after spawn) its lines and marks came."""

    argv: list[str]
    wall: float = 0.0
    returncode: int = 0
    marks: dict[str, float] = field(default_factory=dict)
    last_line: float = 0.0
    lines: list[str] = field(default_factory=list)


def run_timed(argv: list[str], env: dict[str, str]) -> ProcessRun:
    """Spawn `argv`, stamp each output line as it arrives, and time spawn to exit."""
    from dogclf.timings import parse_mark

    run = ProcessRun(argv)
    lock = threading.Lock()
    start = time.time()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def read(stream) -> None:
        for line in stream:
            now = time.time() - start
            with lock:
                mark = parse_mark(line)
                if mark is not None:
                    run.marks[mark[0]] = mark[1] - start
                    continue
                run.lines.append(line.rstrip("\n"))
                run.last_line = max(run.last_line, now)

    readers = [threading.Thread(target=read, args=(s,)) for s in (proc.stdout, proc.stderr)]
    for t in readers:
        t.start()
    run.returncode = proc.wait()
    run.wall = time.time() - start
    for t in readers:
        t.join()
    return run


def import_seconds(repeats: int) -> float:
    """Seconds from spawning `python -c "import torch, torchvision"` until the import is done (best of `repeats`)."""
    code = "import torch, torchvision, time; print(time.time())"
    times = []
    for _ in range(repeats):
        started = time.time()
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        times.append(float(out) - started)
    return min(times)


def dogclf_argv(data: Path, out: Path, args: argparse.Namespace, workers: int) -> list[str]:
    """`dogclf train` as a user types it, with the benchmark's settings."""
    sets = {
        "model.arch": args.arch, "model.weights": "null", "model.freeze": "backbone", "optim.epochs": args.epochs,
        "data.image_size": args.image_size, "data.batch_size": args.batch_size, "data.num_workers": workers,
    }  # fmt: skip
    argv = [sys.executable, "-m", "dogclf.cli.main", "train", "--data", str(data), "--output", str(out)]
    for key, value in sets.items():
        argv += ["--set", f"{key}={value}"]
    return argv


def course_argv(data: Path, out: Path, args: argparse.Namespace, workers: int) -> list[str]:
    """The course script with the same model, epochs, image size, batch size and loader workers."""
    return [
        sys.executable, str(HERE / "course_train_model.py"), "--data", str(data), "--model-dir", str(out),
        "--arch", args.arch, "--epochs", str(args.epochs), "--image-size", str(args.image_size),
        "--batch-size", str(args.batch_size), "--workers", str(workers),
    ]  # fmt: skip


def check(run: ProcessRun, name: str) -> None:
    """Stop with the process's last lines when it failed."""
    if run.returncode != 0:
        tail = "\n".join(run.lines[-20:])
        raise SystemExit(f"{name} exited with {run.returncode}:\n{tail}")


def breakdown(run: ProcessRun, imports: float) -> list[tuple[str, float]]:
    """Where a dogclf run's seconds went, from its phase marks."""
    m = run.marks
    epochs = m["epochs_done"] - m["first_step"]
    return [
        ("spawn -> torch + torchvision imported (separate process)", imports),
        ("spawn -> CLI start (interpreter, dogclf.cli)", m["cli_start"]),
        ("spawn -> data and model ready", m["setup_done"]),
        ("spawn -> first training step", m["first_step"]),
        ("training epochs (first step -> last validation)", epochs),
        ("final evaluation (best weights on valid + test)", m["final_eval_done"] - m["final_eval_start"]),
        ("calibration, artifact, plots, summary", m["outputs_written"] - m["final_eval_done"]),
        ("end-of-training callbacks (tracking)", m["train_end"] - m["outputs_written"]),
        ("command done -> process exit", run.wall - m["command_done"]),
        ("last printed line -> process exit", run.wall - run.last_line),
        ("fixed cost beyond the import (wall - epochs - import)", run.wall - epochs - imports),
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet50", choices=("resnet18", "resnet34", "resnet50"))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--train-per-class", type=int, default=75)
    parser.add_argument("--eval-per-class", type=int, default=10, help="valid and test images per class")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="loader workers of both [default: dogclf's]")
    parser.add_argument("--rounds", type=int, default=1, help="course/dogclf pairs; the fastest of each counts")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from bench_train import make_photos

    from dogclf.data.dataset import default_workers
    from dogclf.timings import ENV

    workers = default_workers(args.workers)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        evals = {"valid": args.eval_per_class, "test": args.eval_per_class}
        data = make_photos(Path(tmp) / "data", args.classes, args.train_per_class, (500, 375), evals)
        n_train, n_eval = args.classes * args.train_per_class, args.classes * args.eval_per_class
        print(f"{args.arch} {args.image_size} px, frozen backbone, {args.epochs} epochs, batch {args.batch_size}, "
              f"{workers} loader workers, {os.cpu_count()} CPUs; {args.classes} classes, {n_train} train / "
              f"{n_eval} valid / {n_eval} test 500x375 JPEGs")  # fmt: skip
        imports = import_seconds(3)
        pairs = []
        for i in range(args.rounds):
            course = run_timed(course_argv(data, Path(tmp) / f"course{i}", args, workers), env)
            check(course, "course loop")
            ours = run_timed(dogclf_argv(data, Path(tmp) / f"run{i}", args, workers), {**env, ENV: "1"})
            check(ours, "dogclf train")
            pairs.append((course, ours))
            print(f"round {i + 1}: course loop {course.wall:6.1f} s, dogclf train {ours.wall:6.1f} s, "
                  f"speedup {course.wall / ours.wall:.2f}x")  # fmt: skip
    # Other load only ever adds time: the fastest run of each is the closest to its cost on a quiet machine.
    course = min((c for c, _ in pairs), key=lambda r: r.wall)
    ours = min((o for _, o in pairs), key=lambda r: r.wall)
    print(f"course loop (PIL full decode, fp32, NCHW), best:  {course.wall:6.1f} s")
    print(f"dogclf train (whole process), best:               {ours.wall:6.1f} s")
    print(f"speedup: {course.wall / ours.wall:.2f}x")
    print("dogclf breakdown of its best run (seconds after spawn, or durations):")
    for name, seconds in breakdown(ours, imports):
        print(f"  {name:56s} {seconds:6.2f}")


if __name__ == "__main__":
    main()
