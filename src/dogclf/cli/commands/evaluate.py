"""`dogclf evaluate`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dogclf.cli.options import add_backend_option
from dogclf.config import PRECISIONS


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def default_plot_path(model: str, split: str) -> Path:
    """RUN/plots/reliability_SPLIT.png for a run (or a run's model/ folder), MODEL/plots/... for a bare model."""
    from dogclf.artifact import resolve_artifact_dir

    directory = resolve_artifact_dir(model)
    from dogclf.training.rundir import RunPaths

    run = RunPaths(directory.parent)
    root = run.root if directory == run.model and run.config.is_file() else directory
    return RunPaths(root).plots / f"reliability_{split}.png"


def _print_text(result, split: str, report: dict | None) -> None:
    low, high = result.counted()["top1_interval"]
    print(f"data: {result.data}")
    print(
        f"{split}: n={result.n} loss={result.loss:.4f} top1={result.top1:.4f} (95% interval {low:.3f}-{high:.3f}) "
        f"top5={_fmt(result.top5)} balanced_accuracy={result.balanced_accuracy:.4f} macro_f1={result.macro_f1:.4f}"
    )
    if report is not None:
        before, after = report["before"], report["after"]
        where = "; in-sample: the temperature was fitted on these images" if report["in_sample"] else ""
        print(f"calibration (temperature {report['temperature']:.4g}, n={report['n']}{where}):")
        for name, row in (("before", before), ("after", after)):
            low, high = row["ece_interval"]
            print(f"  {name + ':':<7} nll={row['nll']:.4f} ece={row['ece']:.4f} (95% interval {low:.4f}-{high:.4f})")
        if report["warning"]:
            print(f"  warning: {report['warning']}")
        print("selective prediction (most confident share kept):")
        for row in report["selective"]:
            kept = f"accuracy {_fmt(row['accuracy'])} at confidence >= {_fmt(row['threshold'])}"
            print(f"  coverage {row['coverage']:.0%}: {kept} (n={row['n']})")
    print("per-class accuracy:")
    for name, acc in result.per_class_accuracy.items():
        print(f"  {name}: {'n/a' if acc is None else f'{acc:.3f}'}")
    confused = result.most_confused()
    if confused:
        print("most confused (true -> predicted: count):")
        for true, pred, count in confused:
            print(f"  {true} -> {pred}: {count}")


def _run(args: argparse.Namespace) -> int:
    from dogclf import plots
    from dogclf.evaluation import evaluate

    result = evaluate(
        args.model,
        args.data,
        split=args.split,
        batch_size=args.batch_size,
        precision=args.precision,
        raw_scores=args.raw_scores,
        backend=args.backend,
    )
    doc = result.to_dict()
    plot = Path(args.plot) if args.plot else default_plot_path(args.model, args.split)
    plots.plot_reliability(doc["calibration"], plot, args.split)
    doc["reliability_plot"] = str(plot)
    if args.json:
        print(json.dumps(doc))
        return 0
    _print_text(result, args.split, doc["calibration"])
    print(f"reliability diagram: {plot}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf evaluate`."""
    p = sub.add_parser(
        "evaluate", help="top-1/top-5, macro metrics, calibration and per-class accuracy of a saved model"
    )
    p.add_argument("model", metavar="RUN_OR_MODEL", help="run folder or model folder")
    p.add_argument("--data", required=True, help="dataset root")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", default="auto", choices=PRECISIONS)
    add_backend_option(p)
    p.add_argument(
        "--json", action="store_true", help="print one JSON object (top1, top5, loss, calibration, confusion...)"
    )
    p.add_argument("--raw-scores", action="store_true", help="ignore the model's fitted temperature (T=1)")
    p.add_argument(
        "--plot", metavar="PNG", help="reliability diagram to write (default RUN/plots/reliability_SPLIT.png)"
    )
    p.set_defaults(func=_run)
