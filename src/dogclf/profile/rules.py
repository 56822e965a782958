"""Bottleneck rules named after SageMaker's ProfilerReport rules, with the defaults AWS documents for them.

Defaults come from `smdebug_rulesconfig.profiler_rules.rules` (what `rule_configs.ProfilerReport` sends to
AWS). System-sample rules wait for `patience` samples like AWS's do (1000 samples at 500 ms is about 8 min),
so short runs report InsufficientData. Local additions are named in each rule's docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dogclf.errors import ConfigError
from dogclf.verdicts import ISSUES, NO_DATA, NOT_APPLICABLE, OK, RuleResult

if TYPE_CHECKING:
    from dogclf.profile.data import ProfileData

RuleFn = Callable[["ProfileData", dict[str, float]], RuleResult]
RULES: dict[str, tuple[dict[str, float], RuleFn]] = {}


def rule(**defaults: float) -> Callable[[RuleFn], RuleFn]:
    """Register a rule under its function name with its default parameters."""

    def decorate(fn: RuleFn) -> RuleFn:
        RULES[fn.__name__] = (defaults, fn)
        return fn

    return decorate


def check_parameters(overrides: dict[str, float]) -> None:
    """Reject keys that are not `<Rule>_<parameter>` of a known rule (the ConfigError lists valid ones)."""
    valid = {f"{name}_{p}" for name, (defaults, _) in RULES.items() for p in defaults}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ConfigError(f"unknown rule parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")


def evaluate_rules(data: ProfileData, overrides: dict[str, float] | None = None) -> list[RuleResult]:
    """Every rule's result: defaults < the run's profile.rules < `overrides` ({'StepOutlier_stddev': 4})."""
    overrides = {**data.meta.get("rule_overrides", {}), **(overrides or {})}
    check_parameters(overrides)
    results = []
    for name, (defaults, fn) in RULES.items():
        params = {p: float(overrides.get(f"{name}_{p}", v)) for p, v in defaults.items()}
        result = fn(data, params)
        results.append(RuleResult(**{**result.to_dict(), "parameters": params}))
    return results


def _pct(values, q: float) -> float:
    import numpy as np

    finite = values[np.isfinite(values)]
    return float(np.percentile(finite, q)) if finite.size else float("nan")


def _train_steps(data: ProfileData):
    """Step arrays without the run's first step (lazy initialization, allocator warm-up)."""
    return {k: v[1:] for k, v in data.steps.items()}, data.step_total[1:]


def _after_patience(data: ProfileData, name: str, patience: float) -> tuple[Any, RuleResult | None]:
    """System samples after the first `patience` ones, or an InsufficientData result."""
    n = len(data.system["t"])
    if n <= patience:
        seconds = data.meta.get("interval_ms", 500) * patience / 1000
        return None, RuleResult(
            name,
            NO_DATA,
            f"{n} system samples; the rule starts after patience={patience:g} samples "
            f"(about {seconds / 60:.1f} min at this interval)",
            f"for short runs lower profile.rules.{name}_patience",
            datapoints=n,
        )
    return slice(int(patience), None), None


def _no_gpu(name: str) -> RuleResult:
    return RuleResult(name, NOT_APPLICABLE, "no GPU was used; the rule checks GPU utilization")


@rule(stddev=3, n_outliers=10)
def StepOutlier(data: ProfileData, p: dict[str, float]) -> RuleResult:
    """Steps slower than mean + stddev * std; fires when more than n_outliers such steps occur."""
    import numpy as np

    steps, total = _train_steps(data)
    if total.size < 3:
        return RuleResult("StepOutlier", NO_DATA, f"{total.size} steps after the first; need at least 3")
    limit = total.mean() + p["stddev"] * total.std()
    slow = np.flatnonzero(total > limit)
    worst = int(np.argmax(total))
    message = (
        f"{slow.size} of {total.size} steps took over mean + {p['stddev']:g} std = {limit * 1e3:.1f} ms "
        f"(mean {total.mean() * 1e3:.1f} ms); slowest: step {int(steps['step'][worst])} "
        f"({total[worst] * 1e3:.1f} ms)"
    )
    if slow.size <= p["n_outliers"]:
        return RuleResult("StepOutlier", OK, message, datapoints=int(total.size))
    split = max(("data", "forward", "backward", "optimizer"), key=lambda k: float(steps[k][slow].sum()))
    return RuleResult(
        "StepOutlier",
        ISSUES,
        message + f"; the outliers spent most time in {split}",
        "look at the slow steps in the step-time plot and trace: periodic outliers come from "
        "checkpointing, evaluation, garbage collection, data-loader worker start-up at epoch "
        "boundaries or slow storage reads",
        datapoints=int(total.size),
    )


@rule(min_threshold=70, max_threshold=200, wait_threshold=50, threshold=50)
def Dataloader(data: ProfileData, p: dict[str, float]) -> RuleResult:
    """Data-wait share of step time; fires when over `threshold`% of steps wait more than `wait_threshold`%.

    AWS's min/max_threshold (loader workers as % of CPU cores) shape the recommendation; wait_threshold and
    threshold are local (AWS's IOBottleneck io_threshold/threshold defaults), measured from the step split.
    """
    steps, total = _train_steps(data)
    if total.size == 0:
        return RuleResult("Dataloader", NO_DATA, "no training steps after the first")
    share = steps["data"] / total.clip(min=1e-9) * 100
    starved = float((share > p["wait_threshold"]).mean() * 100)
    overall = float(steps["data"].sum() / max(total.sum(), 1e-9) * 100)
    workers, cores = int(data.meta.get("workers", 0)), int(data.meta.get("cores", 1))
    used = workers / cores * 100
    message = (
        f"the loop waited for data {overall:.1f}% of the step time; {starved:.1f}% of steps waited more "
        f"than {p['wait_threshold']:g}% ({workers} loader workers on {cores} CPU cores = {used:.0f}%)"
    )
    if starved <= p["threshold"]:
        return RuleResult("Dataloader", OK, message, datapoints=int(total.size))
    if used < p["min_threshold"]:
        advice = f"raise num_workers (data.num_workers / --workers, now {workers}) towards the {cores} CPU cores"
    elif used > p["max_threshold"]:
        advice = f"lower num_workers: {workers} workers oversubscribe {cores} cores; then pre-resize the images"
    else:
        advice = (
            "the workers cannot keep up: pre-resize images close to data.image_size, keep the data on "
            "local SSD, or use an instance with more CPU cores per GPU"
        )
    return RuleResult("Dataloader", ISSUES, message, advice, datapoints=int(total.size))


@rule(threshold=50, gpu_threshold=10, io_threshold=50, patience=1000)
def IOBottleneck(data: ProfileData, p: dict[str, float]) -> RuleResult:
    """Samples with CPU iowait above io_threshold (and GPU below gpu_threshold when present)."""
    window, short = _after_patience(data, "IOBottleneck", p["patience"])
    if short:
        return short
    iowait = data.system["iowait"][window]
    hit = iowait > p["io_threshold"]
    if data.has_gpu:
        hit &= data.system["gpu_util"][window] < p["gpu_threshold"]
    share = float(hit.mean() * 100)
    message = f"{share:.1f}% of samples had iowait > {p['io_threshold']:g}% (p95 iowait {_pct(iowait, 95):.1f}%)"
    if share <= p["threshold"]:
        return RuleResult("IOBottleneck", OK, message, datapoints=int(iowait.size))
    return RuleResult(
        "IOBottleneck",
        ISSUES,
        message,
        "reads wait on storage: copy the dataset to local SSD "
        "(SageMaker: File or FastFile input mode), raise num_workers to overlap reads, or pack "
        "small images into larger files",
        datapoints=int(iowait.size),
    )


@rule(threshold=50, gpu_threshold=10, cpu_threshold=90, patience=1000)
def CPUBottleneck(data: ProfileData, p: dict[str, float]) -> RuleResult:
    """Samples with CPU above cpu_threshold while the GPU is below gpu_threshold (GPU runs only)."""
    if not data.has_gpu:
        return _no_gpu("CPUBottleneck")
    window, short = _after_patience(data, "CPUBottleneck", p["patience"])
    if short:
        return short
    cpu, gpu = data.system["cpu_total"][window], data.system["gpu_util"][window]
    share = float(((cpu > p["cpu_threshold"]) & (gpu < p["gpu_threshold"])).mean() * 100)
    message = f"{share:.1f}% of samples had CPU > {p['cpu_threshold']:g}% while GPU < {p['gpu_threshold']:g}%"
    if share <= p["threshold"]:
        return RuleResult("CPUBottleneck", OK, message, datapoints=int(cpu.size))
    return RuleResult(
        "CPUBottleneck",
        ISSUES,
        message,
        "the GPU waits for the CPU: move augmentation to the "
        "GPU, pre-resize images, raise num_workers, or choose an instance with more vCPUs per GPU",
        datapoints=int(cpu.size),
    )


@rule(threshold_p95=70, threshold_p5=10, window=500, patience=1000)
def LowGPUUtilization(data: ProfileData, p: dict[str, float]) -> RuleResult:
    """Per window of samples: p95 below threshold_p95 (underused) or p5 below threshold_p5 (fluctuating)."""
    import numpy as np

    if not data.has_gpu:
        return _no_gpu("LowGPUUtilization")
    window, short = _after_patience(data, "LowGPUUtilization", p["patience"])
    if short:
        return short
    util = data.system["gpu_util"][window]
    size = max(int(p["window"]), 1)
    chunks = [util[i : i + size] for i in range(0, util.size, size)]
    low = sum(1 for c in chunks if _pct(c, 95) < p["threshold_p95"])
    fluctuating = sum(1 for c in chunks if _pct(c, 95) >= p["threshold_p95"] and _pct(c, 5) < p["threshold_p5"])
    message = (
        f"GPU utilization p95 {_pct(util, 95):.0f}%, p50 {_pct(util, 50):.0f}%, p5 {_pct(util, 5):.0f}% over "
        f"{util.size} samples; {low} of {len(chunks)} windows underused, {fluctuating} fluctuating"
    )
    if not (low or fluctuating):
        return RuleResult("LowGPUUtilization", OK, message, datapoints=int(np.isfinite(util).sum()))
    advice = (
        "increase the batch size or use a smaller (cheaper) GPU instance"
        if low
        else "utilization swings: check the Dataloader and CPUBottleneck rules for input stalls"
    )
    return RuleResult("LowGPUUtilization", ISSUES, message, advice, datapoints=int(util.size))


@rule(increase=5, patience=1000, window=10)
def GPUMemoryIncrease(data: ProfileData, p: dict[str, float]) -> RuleResult:
    """Moving average of GPU memory (% of total) rising by more than `increase` points between windows."""
    if not data.has_gpu:
        return _no_gpu("GPUMemoryIncrease")
    window, short = _after_patience(data, "GPUMemoryIncrease", p["patience"])
    if short:
        return short
    mem = data.system["gpu_mem"][window]
    size = max(int(p["window"]), 1)
    means = [float(mem[i : i + size].mean()) for i in range(0, mem.size - size + 1, size)]
    jumps = [b - a for a, b in zip(means, means[1:], strict=False)]
    biggest = max(jumps, default=0.0)
    message = f"largest rise of the {size}-sample moving average of GPU memory: {biggest:.1f} points"
    if biggest <= p["increase"]:
        return RuleResult("GPUMemoryIncrease", OK, message, datapoints=int(mem.size))
    return RuleResult(
        "GPUMemoryIncrease",
        ISSUES,
        message,
        "memory keeps growing: look for tensors kept "
        "across steps (losses appended without .item(), graphs kept by stored outputs)",
        datapoints=int(mem.size),
    )


@rule(cpu_threshold_p95=70, gpu_threshold_p95=70, gpu_memory_threshold_p95=70, patience=1000, window=500)
def BatchSize(data: ProfileData, p: dict[str, float]) -> RuleResult:
    """Device underused: p95 of CPU, GPU and GPU memory all below thresholds (CPU runs: CPU alone)."""
    window, short = _after_patience(data, "BatchSize", p["patience"])
    if short:
        return short
    recent = slice(max(window.start, len(data.system["t"]) - int(p["window"])), None)
    cpu = _pct(data.system["cpu_total"][recent], 95)
    low = cpu < p["cpu_threshold_p95"]
    message = f"p95 CPU {cpu:.0f}%"
    if data.has_gpu:
        gpu, mem = _pct(data.system["gpu_util"][recent], 95), _pct(data.system["gpu_mem"][recent], 95)
        low = low and gpu < p["gpu_threshold_p95"] and mem < p["gpu_memory_threshold_p95"]
        message += f", p95 GPU {gpu:.0f}%, p95 GPU memory {mem:.0f}%"
    count = len(data.system["t"][recent])
    if not low:
        return RuleResult("BatchSize", OK, message, datapoints=count)
    return RuleResult(
        "BatchSize",
        ISSUES,
        message + " (device underused)",
        "increase the batch size "
        f"(now {data.meta.get('batch_size')}; scale the learning rate with it) or use a smaller "
        "instance",
        datapoints=count,
    )


@rule(threshold=20)
def MaxInitializationTime(data: ProfileData, p: dict[str, float]) -> RuleResult:
    """Minutes from the start of train() to the end of the first step above `threshold`."""
    seconds = data.meta.get("first_step_seconds")
    if seconds is None:
        return RuleResult("MaxInitializationTime", NO_DATA, "no training step finished")
    setup = data.meta.get("setup_seconds", 0)
    message = f"first step finished {seconds:.1f} s after training started (setup {setup:.1f} s)"
    if seconds <= p["threshold"] * 60:
        return RuleResult("MaxInitializationTime", OK, message, datapoints=1)
    return RuleResult(
        "MaxInitializationTime",
        ISSUES,
        message,
        "start-up is slow: cache pretrained weights, use "
        "FastFile input mode or a smaller dataset check, and avoid scanning the data twice",
        datapoints=1,
    )


@rule()
def OverallSystemUsage(data: ProfileData, p: dict[str, float]) -> RuleResult:
    """Percentiles of system usage; never fires (AWS's rule of the same name does not either)."""
    s = data.system
    if not s["t"].size:
        return RuleResult("OverallSystemUsage", NO_DATA, "no system samples")
    parts = [
        f"CPU p50/p95/p99 {_pct(s['cpu_total'], 50):.0f}/{_pct(s['cpu_total'], 95):.0f}/"
        f"{_pct(s['cpu_total'], 99):.0f}%",
        f"process memory max {_pct(s['rss_mb'], 100):.0f} MB",
    ]
    if data.has_gpu:
        parts.append(f"GPU p50/p95 {_pct(s['gpu_util'], 50):.0f}/{_pct(s['gpu_util'], 95):.0f}%")
        parts.append(f"GPU memory max {_pct(s['gpu_mem'], 100):.0f}%")
    return RuleResult("OverallSystemUsage", OK, "; ".join(parts), datapoints=int(s["t"].size))


def time_split_advice(data: ProfileData) -> list[str]:
    """Suggestions from where step time goes (data wait vs compute) and the run's precision settings."""
    total = data.step_total.sum()
    if total <= 0:
        return []
    compute = float((data.steps["forward"].sum() + data.steps["backward"].sum()) / total)
    advice = []
    if compute > 0.5 and data.meta.get("precision") == "fp32":
        advice.append(
            "compute dominates in fp32: try bf16 autocast (--precision bf16) on GPUs and CPUs that support it"
        )
    if compute > 0.5 and not data.meta.get("channels_last"):
        advice.append("compute dominates: use channels_last (runtime.channels_last=true) for convolutional nets")
    if float(data.steps["data"].sum() / total) > 0.3:
        advice.append("the loop waits for data over 30% of the time: raise num_workers or pre-resize images")
    return advice
