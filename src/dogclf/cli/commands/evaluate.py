"""`dogclf evaluate`."""

from __future__ import annotations

import argparse
import json


def _run(args: argparse.Namespace) -> int:
    from dogclf.evaluation import evaluate

    result = evaluate(args.model, args.data, split=args.split, batch_size=args.batch_size, precision=args.precision)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(f"{args.split}: n={result.n} loss={result.loss:.4f} top1={result.top1:.4f} top5={result.top5:.4f}")
    print("per-class accuracy:")
    for name, acc in result.per_class_accuracy.items():
        print(f"  {name}: {'n/a' if acc is None else f'{acc:.3f}'}")
    confused = result.most_confused()
    if confused:
        print("most confused (true -> predicted: count):")
        for true, pred, count in confused:
            print(f"  {true} -> {pred}: {count}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf evaluate`."""
    p = sub.add_parser("evaluate", help="top-1/top-5, per-class accuracy and confusion of a saved model")
    p.add_argument("model", metavar="RUN_OR_MODEL", help="run folder or model folder")
    p.add_argument("--data", required=True, help="dataset root")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--json", action="store_true", help="print one JSON object (top1, top5, loss, n, confusion...)")
    p.set_defaults(func=_run)
