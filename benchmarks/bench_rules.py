"""The Debugger rules' benchmark: synthetic runs split into tuning and held-out cases, and real runs on digits.

Synthetic (tests/debug/synthetic_suite.py): loss sequences written as real smdebug trials. `--tune` scores a
grid of LossNotDecreasing thresholds on the tuning cases only (the defaults in dogclf.debug.config come from
it); the default prints the held-out table (other variants, other seeds) with precision and recall and
their 95% Wilson intervals. `--real` trains tiny models from scratch on scikit-learn's digits (tests/debug/
real_runs.py) with dogclf's hook and prints their table.

    PYTHONPATH=src python benchmarks/bench_rules.py            # held-out table (about 4 min on 2 CPUs)
    PYTHONPATH=src python benchmarks/bench_rules.py --tune     # the tuning grid
    PYTHONPATH=src python benchmarks/bench_rules.py --real     # real-data table
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(_TESTS / "debug"), str(_TESTS)]

GRID = {"z": (2.0, 2.5, 3.0), "diff_percent": (0.2, 0.3, 0.5)}


def _fires(trial, params: dict) -> bool:
    """Whether LossNotDecreasing with dogclf's parameters plus `params` fires on `trial`."""
    from smdebug.exceptions import RuleEvaluationConditionMet
    from smdebug.rules import invoke_rule

    from dogclf.debug.config import merged_rule_parameters
    from dogclf.debug.rules import LossNotDecreasing

    rule = LossNotDecreasing(trial, **{**merged_rule_parameters("LossNotDecreasing"), **params})
    try:
        invoke_rule(rule, start_step=0, end_step=trial.steps()[-1] + 1, raise_eval_cond=True)
    except RuleEvaluationConditionMet:
        return True
    return False


def tune(root: Path) -> str:
    """LossNotDecreasing's (TP, FP, FN) on the tuning cases per grid point.

    The pick: most TP at 0 FP; among ties the most cautious (largest z, then smallest diff_percent).
    """
    import synthetic_suite as suite
    from synthetic_runs import write_trial

    from dogclf.debug.engine import load_trial

    grid = list(itertools.product(GRID["z"], GRID["diff_percent"]))
    counts = {g: [0, 0, 0] for g in grid}
    families = {f.name: f for f in suite.FAMILIES}
    for family, variant, seed, params in suite.cases("tuning"):
        if "LossNotDecreasing" in families[family].also:
            continue
        folder = root / "tuning" / f"{family}-{variant}-{seed}"
        if not folder.is_dir():
            write_trial(suite.make_run(family, params, seed), folder)
        trial, expected = load_trial(folder), "LossNotDecreasing" in families[family].expected
        for z, diff in grid:
            fired = _fires(trial, {"z": z, "diff_percent": diff})
            if fired or expected:
                counts[(z, diff)][0 if fired and expected else 1 if fired else 2] += 1
    rows, best = ["| z | diff_percent | TP | FP | FN |", "|---|---|---|---|---|"], None
    for (z, diff), (tp, fp, fn) in counts.items():
        rows.append(f"| {z:g} | {diff:g} | {tp} | {fp} | {fn} |")
        if fp == 0 and (best is None or (tp, z, -diff) > (best[0], best[1], -best[2])):
            best = (tp, z, diff)
    pick = "none at 0 FP" if best is None else f"z={best[1]:g}, diff_percent={best[2]:g}"
    return "\n".join(rows) + f"\n\npicked: {pick}"


def main(argv: list[str] | None = None) -> None:
    """Print the requested table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", action="store_true", help="score the threshold grid on the tuning cases")
    parser.add_argument("--real", action="store_true", help="train on digits and score the real runs")
    parser.add_argument("--keep", type=Path, help="write trials here (reused when present) instead of a temp dir")
    args = parser.parse_args(argv)
    from dogclf.debug import compat

    compat.load()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        if args.tune:
            print(tune(root))
        elif args.real:
            import real_runs

            print(real_runs.markdown_table(real_runs.run_all(root / "real")))
        else:
            import synthetic_suite as suite

            print(suite.markdown_table(suite.run_split("held-out", root)))


if __name__ == "__main__":
    main()
