"""The rule benchmark on synthetic runs: scenario families with tuning and held-out variants and seeds.

Each family is labelled with the rules that must fire (`expected`) and those that may, truly, as a consequence
(`also`, not scored). Variants and seeds are split: rule thresholds are chosen on TUNING (variants x seeds),
precision and recall are reported on HELD_OUT (other variants, other seeds), which nothing was tuned on. The
issue-19 cases (the slow 120-class run at noise 0.1 and 0.3, the early x2.5 bump of 20 steps, the stall at 45%,
the run under 20 steps, the all-NaN run, the flat 0.30/0.42 gap, the 2-validation overfit, the textbook
15-epoch overtraining, the 0%-accurate 2,000-step run) are held-out variants, and so are the shapes of the real
runs the rules once got wrong (tests/debug/real_runs.py): a loss that explodes at step 1 and settles above its
start, an under-trained model whose last classes are not learned yet, a stuck run whose valid loss drifts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from synthetic_runs import Run, confusions, decay, noisy

RULES = ("ExplodingTensor", "LossNotDecreasing", "Overfit", "Overtraining", "ClassImbalance")
TUNING_SEEDS = (0, 1, 2)
HELD_OUT_SEEDS = (100, 101, 102)


def _valid(train: np.ndarray, e: int, offset: float, sd: float, rng: np.random.Generator) -> list[float]:
    """Per epoch: the train curve's level at the epoch's end plus `offset`, with validation noise `sd`."""
    ends = [float(np.mean(train[max(0, (i + 1) * e - e // 4) : (i + 1) * e])) for i in range(len(train) // e)]
    return [max(v + offset + rng.normal(0, sd), 1e-3) for v in ends]


def healthy(rng, p) -> Run:
    """A loss falling from ln(C) towards `end` along `tau`, valid a little above; balanced counts and confusions."""
    c, n, e = p["classes"], p["steps"], p["epoch"]
    curve = decay(n, math.log(c), p["end"], p.get("tau", math.inf))
    if "bump" in p:
        at, length = p["bump"]
        curve[at : at + length] *= p.get("factor", 2.5)
    train = noisy(curve, p["sd"], rng)
    valid = _valid(curve, e, p.get("gap", 0.1), p.get("valid_sd", 0.02), rng)
    epochs = len(valid)
    acc = list(np.linspace(p.get("acc0", 0.3), p.get("acc", 0.9), epochs))
    if "spread" in p:  # classes learned one after another: class 0 first, the last ones not yet
        acc = [np.clip(a + p["spread"] * (0.5 - np.arange(c) / (c - 1)), 0, 1) for a in acc]
    return Run(train, e, valid, counts=[p.get("per_class", 20) * 5] * c,
               confusions=confusions(c, p.get("per_class", 20), acc, rng))  # fmt: skip


def converged_gap(rng, p) -> Run:
    """Train converges to `train_end`, valid to `valid_end`: a flat gap once converged (not memorizing)."""
    e, epochs = p["epoch"], p["epochs"]
    curve = decay(e * epochs, math.log(p["classes"]), p["train_end"], e * epochs / 6)
    train = noisy(curve, p["sd"], rng)
    train_ce = [float(np.mean(curve[i * e : (i + 1) * e])) for i in range(epochs)]
    gap = p["valid_end"] - p["train_end"]
    valid = [max(t + gap + rng.normal(0, p.get("valid_sd", 0.02)), 1e-3) for t in train_ce]
    return Run(train, e, valid, train_ce)


def stuck(rng, p) -> Run:
    """The loss stays at ln(C): lr 0, or a model that ignores its input; every class wrong."""
    c, n, e = p["classes"], p["steps"], p["epoch"]
    train = noisy(np.full(n, math.log(c)), p["sd"], rng)
    drift = p.get("valid_drift", 0.0)  # lr 0 with BatchNorm: the valid loss moves with the running statistics
    valid = [math.log(c) + drift * (1 - math.exp(-i / 2)) + rng.normal(0, 0.01) for i in range(n // e)]
    acc = [p.get("acc", 1 / c)] * len(valid)
    return Run(train, e, valid, counts=[100] * c, confusions=confusions(c, p.get("per_class", 20), acc, rng))


def stall(rng, p) -> Run:
    """Falls to `level` x its start within `drop` steps, then stays flat (partial progress, then stuck)."""
    c, n, e = p["classes"], p["steps"], p["epoch"]
    start = math.log(c)
    curve = np.concatenate([decay(p["drop"], start, start * p["level"], p["drop"] / 3),
                            np.full(n - p["drop"], start * p["level"])])  # fmt: skip
    return Run(noisy(curve, p["sd"], rng), e, _valid(curve, e, 0.05, 0.02, rng))


def diverging(rng, p) -> Run:
    """Healthy until `at`, then the loss climbs to `factor` x its start and stays there."""
    c, n, e = p["classes"], p["steps"], p["epoch"]
    start = math.log(c)
    curve = decay(n, start, start * 0.3, n / 3)
    rise = decay(n - p["at"], curve[p["at"]], start * p["factor"], p.get("ramp", 5))
    curve[p["at"] :] = rise
    return Run(noisy(curve, p["sd"] * curve / start, rng), e, _valid(curve, e, 0.1, 0.02, rng))


def explode(rng, p) -> Run:
    """The loss jumps to `peak` x its start at step 1 (logits blew up), then settles at `settle` x its start."""
    c, n, e = p["classes"], p["steps"], p["epoch"]
    start, t = math.log(c), np.arange(n - 1, dtype=float)
    curve = np.concatenate([[start], start * p["settle"] * (p["peak"] / p["settle"]) ** np.exp(-t / p["tau"])])
    return Run(noisy(curve, p["sd"], rng), e, _valid(curve, e, 0.1, 0.05, rng))


def nan(rng, p) -> Run:
    """Healthy until `at`, NaN from there on (`at` 0: every loss NaN)."""
    c, n, e = p["classes"], p["steps"], p["epoch"]
    train = noisy(decay(n, math.log(c), 0.5, n / 3), p["sd"], rng)
    train[p["at"] :] = np.nan
    valid = [float("nan") if (i + 1) * e > p["at"] else float(train[(i + 1) * e - 1]) for i in range(n // e)]
    return Run(train, e, valid)


def overfit(rng, p) -> Run:
    """Train CE falls to ~0; valid falls until `turn`, then rises by `rise` per epoch."""
    e, epochs, start = p["epoch"], p["epochs"], p.get("start", 1.1)
    curve = decay(e * epochs, start, 0.02, e * p.get("tau_epochs", 1.0))
    train_ce = [float(np.mean(curve[i * e : (i + 1) * e])) for i in range(epochs)]
    low = p.get("low", start * 0.6)
    valid = [low + (max(0, i + 1 - p["turn"]) * p["rise"]) + (p["turn"] - 1 - i) * 0.05 * (i + 1 < p["turn"])
             + rng.normal(0, 0.02) for i in range(epochs)]  # fmt: skip
    return Run(noisy(curve, p["sd"], rng), e, valid, train_ce)


def imbalanced(rng, p) -> Run:
    """A healthy run whose training classes are imbalanced (`counts`)."""
    run = healthy(rng, {**p, "classes": len(p["counts"])})
    run.counts = p["counts"]
    return run


@dataclass(frozen=True)
class Family:
    """A labelled kind of run with its tuning and held-out variants (generator parameters)."""

    name: str
    expected: frozenset[str]
    make: Callable[[np.random.Generator, dict], Run]
    tuning: tuple[dict, ...]
    held_out: tuple[dict, ...]
    also: frozenset[str] = frozenset()


NONE: frozenset[str] = frozenset()
FAMILIES = (
    Family("slow-healthy", NONE, healthy,
           ({"classes": 100, "steps": 500, "epoch": 25, "end": 3.4, "sd": 0.15, "acc0": 0.05, "acc": 0.4},
            {"classes": 100, "steps": 500, "epoch": 25, "end": 3.4, "sd": 0.25, "per_class": 6, "acc": 0.4}),
           ({"classes": 120, "steps": 600, "epoch": 30, "end": 3.3, "tau": 600, "sd": 0.1, "per_class": 6},
            {"classes": 120, "steps": 600, "epoch": 30, "end": 3.3, "tau": 600, "sd": 0.3, "per_class": 6},
            {"classes": 133, "steps": 600, "epoch": 20, "end": 3.3, "sd": 0.3, "acc0": 0.05, "acc": 0.5},
            # under-trained as digits at lr 1e-4: top-1 0.1 -> 0.45, the last classes not learned yet
            {"classes": 10, "steps": 136, "epoch": 34, "end": 2.0, "sd": 0.1, "per_class": 36, "acc0": 0.1,
             "acc": 0.45, "spread": 1.2})),
    Family("fast-healthy", NONE, healthy,
           ({"classes": 5, "steps": 300, "epoch": 20, "end": 0.1, "tau": 60, "sd": 0.1},),
           ({"classes": 3, "steps": 240, "epoch": 15, "end": 0.05, "tau": 40, "sd": 0.05},
            {"classes": 10, "steps": 400, "epoch": 40, "end": 0.3, "tau": 100, "sd": 0.2})),
    Family("early-bump", NONE, healthy,
           ({"classes": 10, "steps": 300, "epoch": 30, "end": 0.5, "tau": 100, "sd": 0.1, "bump": (20, 15)},),
           ({"classes": 10, "steps": 300, "epoch": 30, "end": 0.5, "tau": 100, "sd": 0.1, "bump": (10, 20)},
            {"classes": 20, "steps": 400, "epoch": 25, "end": 0.8, "tau": 150, "sd": 0.2, "bump": (40, 20)})),
    Family("converged-gap", NONE, converged_gap,
           ({"classes": 5, "epoch": 20, "epochs": 12, "train_end": 0.2, "valid_end": 0.35, "sd": 0.05},),
           ({"classes": 10, "epoch": 30, "epochs": 15, "train_end": 0.30, "valid_end": 0.42, "sd": 0.1},
            {"classes": 10, "epoch": 30, "epochs": 10, "train_end": 0.30, "valid_end": 0.42, "sd": 0.1,
             "valid_sd": 0.04})),
    Family("short", NONE, healthy,
           ({"classes": 5, "steps": 30, "epoch": 10, "end": 1.0, "sd": 0.1},),
           ({"classes": 5, "steps": 15, "epoch": 5, "end": 1.0, "sd": 0.1},
            {"classes": 3, "steps": 19, "epoch": 19, "end": 0.8, "sd": 0.05})),
    Family("stuck", frozenset({"LossNotDecreasing"}), stuck,
           ({"classes": 10, "steps": 300, "epoch": 30, "sd": 0.1},),
           ({"classes": 120, "steps": 600, "epoch": 30, "sd": 0.3},
            {"classes": 3, "steps": 300, "epoch": 15, "sd": 0.05},
            # lr 0 with BatchNorm: the valid loss drifts up 0.11 with the running statistics, train flat
            {"classes": 3, "steps": 300, "epoch": 30, "sd": 0.05, "valid_drift": 0.11, "per_class": 10}),
           also=frozenset({"ClassImbalance"})),
    Family("partial-stall", frozenset({"LossNotDecreasing"}), stall,
           ({"classes": 10, "steps": 400, "epoch": 40, "drop": 60, "level": 0.5, "sd": 0.1},),
           ({"classes": 120, "steps": 600, "epoch": 30, "drop": 100, "level": 0.45, "sd": 0.3},
            {"classes": 5, "steps": 300, "epoch": 30, "drop": 40, "level": 0.45, "sd": 0.05})),
    Family("diverging", frozenset({"LossNotDecreasing"}), diverging,
           ({"classes": 10, "steps": 300, "epoch": 30, "at": 100, "factor": 3, "sd": 0.1},),
           ({"classes": 10, "steps": 300, "epoch": 30, "at": 150, "factor": 2.5, "ramp": 30, "sd": 0.1},
            {"classes": 3, "steps": 150, "epoch": 15, "at": 30, "factor": 10, "sd": 0.05}),
           also=frozenset({"Overfit", "Overtraining"})),
    # AdamW at lr 10 from scratch: x1000 at step 1, then settles above its start (held out only)
    Family("explode-settle", frozenset({"LossNotDecreasing"}), explode, (),
           ({"classes": 10, "steps": 136, "epoch": 34, "peak": 1000, "settle": 1.3, "tau": 8, "sd": 0.4},
            {"classes": 3, "steps": 75, "epoch": 15, "peak": 300, "settle": 1.0, "tau": 5, "sd": 0.2}),
           also=frozenset({"Overfit", "Overtraining"})),
    Family("nan", frozenset({"LossNotDecreasing", "ExplodingTensor"}), nan,
           ({"classes": 10, "steps": 200, "epoch": 20, "at": 120, "sd": 0.1},),
           ({"classes": 10, "steps": 15, "epoch": 5, "at": 0, "sd": 0.1},
            {"classes": 5, "steps": 300, "epoch": 30, "at": 45, "sd": 0.1})),
    Family("overfit", frozenset({"Overfit"}), overfit,
           ({"epoch": 20, "epochs": 8, "turn": 3, "rise": 0.15, "sd": 0.05},),
           ({"epoch": 20, "epochs": 2, "turn": 1, "rise": 0.4, "sd": 0.05, "tau_epochs": 0.3},
            {"epoch": 30, "epochs": 6, "turn": 2, "rise": 0.2, "sd": 0.05, "start": 2.3, "low": 1.2}),
           also=frozenset({"Overtraining"})),
    Family("overtraining", frozenset({"Overtraining"}), overfit,
           ({"epoch": 20, "epochs": 12, "turn": 5, "rise": 0.04, "sd": 0.05, "tau_epochs": 3},),
           ({"epoch": 30, "epochs": 15, "turn": 6, "rise": 0.03, "sd": 0.05, "tau_epochs": 4, "start": 1.6},
            {"epoch": 20, "epochs": 20, "turn": 8, "rise": 0.025, "sd": 0.05, "tau_epochs": 5}),
           also=frozenset({"Overfit"})),
    Family("imbalanced", frozenset({"ClassImbalance"}), imbalanced,
           ({"counts": [200, 200, 15], "steps": 200, "epoch": 20, "end": 0.3, "tau": 60, "sd": 0.1},),
           ({"counts": [300, 280, 260, 20], "steps": 200, "epoch": 20, "end": 0.3, "tau": 60, "sd": 0.1},
            {"counts": [60] * 9 + [5], "steps": 200, "epoch": 20, "end": 0.3, "tau": 60, "sd": 0.1})),
    Family("zero-accuracy", frozenset({"ClassImbalance"}), stuck,
           ({"classes": 5, "steps": 500, "epoch": 100, "sd": 0.1, "acc": 0.0},),
           ({"classes": 10, "steps": 2000, "epoch": 250, "sd": 0.1, "acc": 0.0},),
           also=frozenset({"LossNotDecreasing"})),
)  # fmt: skip


def cases(split: str) -> list[tuple[str, int, int, dict]]:
    """(family, variant index, seed, parameters) of the 'tuning' or 'held-out' split."""
    seeds = TUNING_SEEDS if split == "tuning" else HELD_OUT_SEEDS
    return [
        (f.name, i, seed, params)
        for f in FAMILIES
        for i, params in enumerate(f.tuning if split == "tuning" else f.held_out)
        for seed in seeds
    ]


def make_run(family: str, params: dict, seed: int) -> Run:
    """The run of one case."""
    f = next(f for f in FAMILIES if f.name == family)
    return f.make(np.random.default_rng(seed), params)


def evaluate_case(run_dir, overrides: dict | None = None) -> dict[str, str]:
    """{rule: status} of the benchmark's rules over a written trial, with dogclf's parameters plus `overrides`."""
    from dogclf.debug.engine import evaluate_rules

    return {r.rule: r.status for r in evaluate_rules(run_dir, overrides, names=list(RULES))}


def run_split(split: str, root, overrides: dict | None = None, only=None) -> dict[tuple[str, int, int], dict]:
    """Write (once, under `root`) and evaluate every case of `split`: {(family, variant, seed): {rule: status}}."""
    from pathlib import Path

    from synthetic_runs import write_trial

    out = {}
    for family, variant, seed, params in cases(split):
        if only and family not in only:
            continue
        folder = Path(root) / split / f"{family}-{variant}-{seed}"
        if not folder.is_dir():
            write_trial(make_run(family, params, seed), folder)
        out[(family, variant, seed)] = evaluate_case(folder, overrides)
    return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (95% by default)."""
    if n == 0:
        return (math.nan, math.nan)
    p, d = k / n, 1 + z * z / n
    centre, half = (p + z * z / (2 * n)) / d, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, centre - half), min(1.0, centre + half))


def scores(results: dict) -> dict[str, tuple[int, int, int]]:
    """Per rule: (true positives, false positives, false negatives); `also` cells are not scored."""
    families = {f.name: f for f in FAMILIES}
    out = {}
    for rule in RULES:
        pairs = [
            (rule in families[fam].expected, st[rule] == "IssuesFound")
            for (fam, _, _), st in results.items()
            if rule not in families[fam].also
        ]
        out[rule] = (sum(e and f for e, f in pairs), sum(f and not e for e, f in pairs),
                     sum(e and not f for e, f in pairs))  # fmt: skip
    return out


def _ratio(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return "-" if n == 0 else f"{k}/{n} = {k / n:.2f} [{lo:.2f}, {hi:.2f}]"


def markdown_table(results: dict) -> str:
    """Family x rule cells (fired/runs, NotEvaluated counted), then precision and recall with Wilson intervals."""
    families = {f.name: f for f in FAMILIES}
    names = list(dict.fromkeys(fam for fam, _, _ in results))
    lines = ["| family | runs | " + " | ".join(RULES) + " |", "|---" * (len(RULES) + 2) + "|"]
    for fam in names:
        runs = [st for (f, _, _), st in results.items() if f == fam]
        cells = []
        for rule in RULES:
            fired = sum(st[rule] == "IssuesFound" for st in runs)
            skipped = sum(st[rule] == "NotEvaluated" for st in runs)
            errors = sum(st[rule] == "Error" for st in runs)
            mark = "*" if rule in families[fam].expected else "~" if rule in families[fam].also else ""
            extra = (f" ({skipped} NE)" if skipped else "") + (f" ({errors} Error)" if errors else "")
            cells.append(f"{mark}{fired}/{len(runs)}{extra}")
        lines.append(f"| {fam} | {len(runs)} | " + " | ".join(cells) + " |")
    lines += ["", "| rule | precision [95% Wilson] | recall [95% Wilson] |", "|---|---|---|"]
    for rule, (tp, fp, fn) in scores(results).items():
        lines.append(f"| {rule} | {_ratio(tp, tp + fp)} | {_ratio(tp, tp + fn)} |")
    return "\n".join(lines)
