"""Serving throughput and latency per backend: the local endpoint vs the raw model, in one run.

Builds a random-init ResNet50 artifact (133 classes, 224 px), writes real JPEGs (500x375, like dogImages),
exports it (OpenVINO / ONNX, fp32 and int8; int8 forced past the accuracy gate, since random weights have no
accuracy to keep: bench_export.py measures accuracy on a trained model), then measures, on this machine:
  raw B P       backend B at precision P alone on preprocessed batches, images/s
  fp32 handler  the SageMaker handlers in process, eager fp32, one request at a time (with --backends eager)
  server B cN   `dogclf serve --backend B` in a subprocess, N concurrent HTTP clients, one JPEG per request,
                with where the time went per image (the server's stage timers in /metrics)
Every server level is compared with the raw eager bf16 model measured right around it (same background load)
and with its own engine run raw at batch 8 just before and after it.
Targets: eager server c8 >= 75% of raw eager bf16; a server c8 >= 80% of its raw engine at batch 8; the
fastest backend's server c8 >= 3x raw eager bf16.

    python benchmarks/bench_serve.py                     # openvino-int8 at c8, 320x240 JPEGs: the issue 23 targets
    python benchmarks/bench_serve.py --requests 24 --backends eager --concurrency 1,8  # quick check
    python benchmarks/bench_serve.py --backends eager,openvino-int8,onnx-int8,openvino-fp32 --jpeg-size 500x375
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def build_model(workdir: Path, image_size: int) -> Path:
    """A random-init resnet50 artifact; serving cost does not depend on the weights' values."""
    from dogclf.artifact import ArtifactMetadata, save_artifact
    from dogclf.data.preprocess import Preprocess
    from dogclf.data.synthetic import breed_folder
    from dogclf.models import create_model

    folders = [breed_folder(i) for i in range(133)]
    names = [f.split(".", 1)[1] for f in folders]
    preprocess = Preprocess.for_size(image_size)
    meta = ArtifactMetadata(arch="resnet50", num_classes=133, class_names=names, class_folders=folders,
                            preprocess=preprocess, run_name="bench-resnet50")  # fmt: skip
    return save_artifact(workdir / "model", create_model("resnet50", 133, weights=None), meta)


def make_jpegs(workdir: Path, count: int, width: int = 500, height: int = 375) -> list[bytes]:
    """Photo-like JPEGs (smooth gradients + texture + noise), quality 90; 500x375 like dogImages."""
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for i in range(count):
        base = rng.uniform(40, 200, 3) + 50 * np.sin(xx[..., None] / rng.uniform(20, 80) + np.arange(3))
        texture = 25 * np.sin((xx + yy * rng.uniform(0.2, 2.0))[..., None] / rng.uniform(3, 9))
        pixels = np.clip(base + texture + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
        (workdir / f"img{i:03d}.jpg").write_bytes(buffer.getvalue())
    return out


class RawModel:
    """The model alone on one preprocessed batch: the ceiling any server on this machine can reach."""

    def __init__(
        self, model_dir: Path, jpegs: list[bytes], precision: str, batch: int, backend: str = "eager", streams: int = 1
    ) -> None:
        from dogclf.artifact import load_artifact
        from dogclf.backends.base import PixelBackend
        from dogclf.config import RuntimeConfig
        from dogclf.inference import InferenceEngine
        from dogclf.runtime import resolve_runtime

        runtime = resolve_runtime(RuntimeConfig(device="cpu", precision=precision))
        self.engine = InferenceEngine(load_artifact(model_dir), runtime, backend=backend, streams=streams)
        # An engine compiled for several streams (OpenVINO) runs that many batches at once, as the server's
        # model threads do: as many callers here. Other engines: one caller.
        self.callers = getattr(self.engine.backend, "streams", 1)
        crops = np.stack([self.engine.pixels(j) for j in jpegs[:batch]])
        if isinstance(self.engine.backend, PixelBackend):  # uint8 crops into the model the server runs
            self.batch, self.forward = crops, self.engine.logits_pixels
        else:  # the network alone: normalized once, here
            self.batch, self.forward = self.engine.transform.normalize(crops), self.engine.logits
        for _ in range(2):
            self.forward(self.batch)

    def throughput(self, n: int) -> float:
        """Images/s over at least n images (whole batches, split between the callers)."""
        steps = max(2, -(-n // (len(self.batch) * self.callers)))

        def run(_: int) -> None:
            for _ in range(steps):
                self.forward(self.batch)

        start = time.perf_counter()
        with ThreadPoolExecutor(self.callers) as pool:
            list(pool.map(run, range(self.callers)))
        return steps * self.callers * len(self.batch) / (time.perf_counter() - start)


def handler_throughput(model_dir: Path, jpegs: list[bytes], n: int) -> tuple[float, list[float]]:
    """The SageMaker handlers, fp32, one request at a time (what an unbatched endpoint does)."""
    os.environ["DOGCLF_PRECISION"] = "fp32"
    os.environ["DOGCLF_BACKEND"] = "eager"
    from dogclf.serve import handlers

    model = handlers.model_fn(str(model_dir))

    def request(body: bytes) -> bytes:
        prediction = handlers.predict_fn(handlers.input_fn(body, "image/jpeg"), model)
        return handlers.output_fn(prediction, "application/json")[0]

    for body in jpegs[:2]:
        request(body)
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        request(jpegs[i % len(jpegs)])
        latencies.append(time.perf_counter() - t0)
    return n / (time.perf_counter() - start), latencies


def load_server(url: str, jpegs: list[bytes], concurrency: int, n: int) -> tuple[float, list[float], float]:
    """n requests from `concurrency` keep-alive clients; returns (requests/s, latencies, client CPU s/request).

    The clients run in this process on the same cores as the server: their CPU time is reported so the
    share of the machine they take is visible.
    """
    import httpx

    local = threading.local()
    counter = iter(range(n))
    lock = threading.Lock()

    def one(_: int) -> float:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=120)
        with lock:
            i = next(counter)
        t0 = time.perf_counter()
        r = local.client.post(f"{url}/invocations", content=jpegs[i % len(jpegs)],
                              headers={"Content-Type": "image/jpeg"})  # fmt: skip
        r.raise_for_status()
        return time.perf_counter() - t0

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(min(n, 2 * concurrency))))  # warm-up: connections and first batches
        counter = iter(range(n))
        start, cpu = time.perf_counter(), time.process_time()
        latencies = list(pool.map(one, range(n)))
        return n / (time.perf_counter() - start), latencies, (time.process_time() - cpu) / n


def interleaved(raw: RawModel, engine: RawModel, url: str, jpegs: list[bytes], concurrency: int,
                args: argparse.Namespace) -> dict:  # fmt: skip
    """Alternate server slices with raw eager bf16 and raw engine slices, so all see the same background load.

    Each server slice is compared with the mean of the raw slices just before and after it; the ratios' median
    over the rounds is the figure, and their range says how much the machine moved.
    """
    per_round = max(concurrency, args.requests // args.rounds)
    raws, engines = [raw.throughput(per_round // 2)], [engine.throughput(per_round)]
    served, latencies, client_cpu = [], [], []
    for _ in range(args.rounds):
        throughput, lat, cpu = load_server(url, jpegs, concurrency, per_round)
        served.append(throughput)
        latencies += lat
        client_cpu.append(cpu)
        raws.append(raw.throughput(per_round // 2))
        engines.append(engine.throughput(per_round))

    def ratios(reference: list[float]) -> list[float]:
        return [s / ((a + b) / 2) for s, a, b in zip(served, reference[:-1], reference[1:], strict=True)]

    return {
        "throughput": per_round * args.rounds / sum(per_round / s for s in served),
        "latencies": latencies,
        "raw_bf16_around": statistics.median(raws),
        "vs_raw_bf16": statistics.median(ratios(raws)),
        "client_cpu_ms": statistics.median(client_cpu) * 1e3,
        "raw_engine_b8": statistics.median(engines),
        "vs_raw_engine": statistics.median(ratios(engines)),
        "vs_raw_engine_range": [min(ratios(engines)), max(ratios(engines))],
    }


def listening_event(log: str) -> dict:
    """The server's `listening` log line: its settings, as resolved (workers, threads, parser...)."""
    line = next((line for line in log.splitlines() if '"event": "listening"' in line), None)
    return json.loads(line[line.index("{") :]) if line else {}


def server_settings(log: str) -> str:
    """The batching and threading settings from the server's `listening` log line."""
    event = listening_event(log)
    keys = ("http", "loop", "workers", "threads", "decode_threads", "max_batch_size", "max_batch_delay_ms")
    keys += ("precision",)
    return ", ".join(f"{key} {event[key]}" for key in keys) if event else "settings not logged"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q))


def batch_totals(url: str) -> tuple[float, float]:
    """(images, forward passes) so far, from the server's /metrics."""
    import httpx

    text = httpx.get(f"{url}/metrics").text
    lines = [line.split() for line in text.splitlines() if line.startswith("dogclf_batch_size_")]
    found = {name: float(value) for name, value in lines if not name.startswith("dogclf_batch_size_bucket")}
    return found["dogclf_batch_size_sum"], found["dogclf_batch_size_count"]


CPU_FLAGS = ("avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_description() -> str:
    """The CPU model and the flags that decide bf16/int8 speed (AVX-512, VNNI, AVX512-BF16, AMX), from Linux."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "CPU model unknown (no /proc/cpuinfo)"
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    model = next((v.strip() for k, v in fields.items() if k.strip() == "model name"), "unknown")
    flags = set(next((v.split() for k, v in fields.items() if k.strip() == "flags"), []))
    return f"{model}; flags: {' '.join(f for f in CPU_FLAGS if f in flags) or 'none of ' + ', '.join(CPU_FLAGS)}"


STAGE_ORDER = ("read", "decode_queue", "decode", "resize_crop", "batch_wait", "engine", "return", "encode", "write")


def stage_totals(url: str) -> dict[str, tuple[float, float]]:
    """{stage: (seconds, observations)} so far, from the server's /metrics."""
    import httpx

    found: dict[str, list[float]] = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        for metric, slot in (("dogclf_stage_seconds_total", 0), ("dogclf_stage_observations_total", 1)):
            if line.startswith(metric + "{"):
                stage = line.split('"')[1]
                found.setdefault(stage, [0.0, 0.0])[slot] = float(line.split()[-1])
    return {stage: (values[0], values[1]) for stage, values in found.items()}


def print_stages(before: dict, after: dict, images: float) -> dict[str, float]:
    """Per-stage milliseconds per image between two scrapes (stages overlap across concurrent requests)."""
    per_image = {}
    for stage in STAGE_ORDER:
        seconds = after.get(stage, (0, 0))[0] - before.get(stage, (0, 0))[0]
        per_image[stage] = seconds * 1000 / max(images, 1)
    print("  stages, ms per image (summed over requests): " + ", ".join(f"{k} {v:.2f}" for k, v in per_image.items()))
    return per_image


def make_exports(workdir: Path, model_dir: Path, jpegs: list[bytes], backends: list[str]) -> None:
    """The exports the asked backends need, calibrated on the bench JPEGs (an ImageFolder of the model's classes)."""
    from dogclf.artifact import read_metadata
    from dogclf.backends.select import EXPORT_CHOICES
    from dogclf.export import export_model

    data = workdir / "calibration"
    for i, folder in enumerate(read_metadata(model_dir).class_folders):
        for split in ("train", "valid", "test"):
            (data / split / folder).mkdir(parents=True)
            (data / split / folder / "img.jpg").write_bytes(jpegs[i % len(jpegs)])
    for name in dict.fromkeys(b for b in backends if b in EXPORT_CHOICES):
        fmt, precision = name.split("-")
        result = export_model(model_dir, fmt, int8=precision == "int8", calibration_data=data, force=True)
        print(f"exported {name} in {result.seconds:.1f} s", flush=True)


def serve_levels(model_dir: Path, raw: RawModel, jpegs, backend: str, levels: list[int], args, report) -> None:
    """`dogclf serve --backend BACKEND` at each concurrency level, each against raw eager bf16 around it."""
    from dogclf.serve.local import LocalEndpoint

    serve_args = ["--backend", backend, "--max-batch-size", str(args.max_batch_size)]
    serve_args += ["--max-batch-delay-ms", str(args.max_batch_delay_ms)]
    for flag in ("workers", "threads", "decode_threads", "http", "loop"):
        if getattr(args, flag) is not None:
            serve_args += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    with LocalEndpoint(model_dir, *serve_args) as endpoint:
        print(f"server {backend}: {server_settings(endpoint.log_text())}")
        workers = listening_event(endpoint.log_text()).get("workers", 1)  # OpenVINO: the server's streams
        engine = RawModel(model_dir, jpegs, "auto", ENGINE_BATCH, backend, streams=workers)  # the same engine, raw
        for c in levels:
            images, passes = batch_totals(endpoint.url)
            stages = stage_totals(endpoint.url)
            run = interleaved(raw, engine, endpoint.url, jpegs, c, args)
            images_after, passes_after = batch_totals(endpoint.url)
            mean_batch = (images_after - images) / max(1.0, passes_after - passes)
            name = f"server_{backend}_c{c}"
            report(name, f"server {backend}, concurrency {c}", run.pop("throughput"), run.pop("latencies"))
            report.figures[name] |= run | {"mean_batch": mean_batch}
            low, high = run["vs_raw_engine_range"]
            print(f"{'':<34} = {run['vs_raw_bf16']:.2f}x raw eager bf16 around it (median of {args.rounds} rounds; "
                  f"raw {run['raw_bf16_around']:.1f} img/s); {run['vs_raw_engine']:.2f}x raw {backend} at batch "
                  f"{ENGINE_BATCH} (median of {args.rounds} rounds, {low:.2f}-{high:.2f}; raw "
                  f"{run['raw_engine_b8']:.1f} img/s, {engine.callers} caller(s)); mean batch {mean_batch:.1f}; "
                  f"clients' CPU {run['client_cpu_ms']:.1f} ms/request",
                  flush=True)  # fmt: skip
            report.figures[name]["stages_ms_per_image"] = print_stages(
                stages, stage_totals(endpoint.url), images_after - images
            )


class Report:
    """Prints one aligned row per figure and keeps them for --json."""

    def __init__(self) -> None:
        self.figures: dict[str, dict] = {}

    def __call__(self, name: str, label: str, throughput: float, latencies: list[float] | None = None) -> None:
        self.figures[name] = {"throughput": throughput}
        line = f"{label:<34} {throughput:7.1f} img/s"
        if latencies:
            self.figures[name] |= {"p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99)}
            line += f"  p50 {pct(latencies, 50):7.1f} ms  p99 {pct(latencies, 99):7.1f} ms"
        print(line, flush=True)


ENGINE_BATCH = 8
RAW_PRECISIONS = {"onnx": ("fp32",), "onnx-fp32": ("fp32",), "onnx-int8": ("fp32",)}


def verdicts(figures: dict[str, dict], backends: list[str], handler: float) -> None:
    """The targets, judged on the c8 rows."""
    verdict = {True: "met", False: "MISSED"}
    eager = figures.get("server_eager_c8")
    if eager:
        print(f"eager server c8 = {eager['vs_raw_bf16']:.0%} of raw eager bf16 (target >= 75%: "
              f"{verdict[eager['vs_raw_bf16'] >= 0.75]}); {eager['throughput'] / handler:.1f}x the fp32 handler "
              f"(target >= 2x: {verdict[eager['throughput'] >= 2 * handler]})")  # fmt: skip
    for b in backends:
        row = figures.get(f"server_{b}_c8")
        if row:
            low, high = row["vs_raw_engine_range"]
            print(f"server {b} c8 = {row['vs_raw_engine']:.0%} of raw {b} at batch {ENGINE_BATCH}, median of the "
                  f"rounds ({low:.0%}-{high:.0%}) (target >= 80%: {verdict[row['vs_raw_engine'] >= 0.8]}), "
                  f"{row['vs_raw_bf16']:.2f}x raw eager bf16")  # fmt: skip
    rows = [(figures[f"server_{b}_c8"]["vs_raw_bf16"], b) for b in backends if f"server_{b}_c8" in figures]
    if rows:
        best, backend = max(rows)
        print(
            f"fastest server c8: {backend}, {best:.2f}x raw eager bf16 around it (target >= 3x: {verdict[best >= 3]})"
        )


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--jpeg-size", default="320x240", help="WIDTHxHEIGHT of the request JPEGs")
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--max-batch-delay-ms", type=float, default=5.0)
    parser.add_argument("--workers", type=int, help="server model threads (default: the server's)")
    parser.add_argument("--threads", type=int, help="torch threads per server model thread (default: the server's)")
    parser.add_argument("--decode-threads", type=int, help="server decode threads (default: the server's)")
    parser.add_argument("--http", help="server HTTP parser: httptools or h11 (default: the server's)")
    parser.add_argument("--loop", help="server event loop: uvloop or asyncio (default: the server's)")
    parser.add_argument("--concurrency", default="8", help="levels for the first backend")
    parser.add_argument("--backends", default="openvino-int8",
                        help="backends to measure (compile adds a long compile)")  # fmt: skip
    parser.add_argument("--backend-concurrency", default="8", help="levels for the other backends")
    parser.add_argument("--rounds", type=int, default=3, help="raw/server alternations per concurrency level")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    import torch

    from dogclf.runtime import cpu_supports_bf16

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        workdir = Path(tmp)
        model_dir = build_model(workdir, args.image_size)
        width, height = (int(v) for v in args.jpeg_size.lower().split("x"))
        jpegs = make_jpegs(workdir, 32, width, height)
        mean_kib = statistics.mean(map(len, jpegs)) / 1024
        print(f"CPU: {cpu_description()}")
        print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"native bf16: {cpu_supports_bf16()}; JPEGs {args.jpeg_size}, mean {mean_kib:.0f} KiB")  # fmt: skip
        make_exports(workdir, model_dir, jpegs, backends)
        report, batch = Report(), args.max_batch_size
        raw = RawModel(model_dir, jpegs, "bf16", batch)
        report("raw_eager_bf16", f"raw eager bf16, batch {batch}", raw.throughput(args.requests))
        for backend in ["eager", *[b for b in backends if b != "eager"]]:
            for precision in RAW_PRECISIONS.get(backend, ("fp32", "bf16")):
                if (backend, precision) != ("eager", "bf16"):
                    other = RawModel(model_dir, jpegs, precision, batch, backend)
                    report(f"raw_{backend}_{precision}", f"raw {backend} {precision}, batch {batch}",
                           other.throughput(args.requests // 2))  # fmt: skip
        handler = 0.0
        if "eager" in backends:  # the baseline of the eager server's target only
            handler, latencies = handler_throughput(model_dir, jpegs, max(16, args.requests // 4))
            report("fp32_handler", "eager fp32 handler, 1 at a time", handler, latencies)
        for i, backend in enumerate(backends):
            levels = args.concurrency if i == 0 else args.backend_concurrency
            serve_levels(model_dir, raw, jpegs, backend, [int(c) for c in levels.split(",")], args, report)
        verdicts(report.figures, backends, handler)
        if args.json:
            Path(args.json).write_text(json.dumps(report.figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
