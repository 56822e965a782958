"""`dogclf quickstart`."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from dogclf.quickstart import run_quickstart

    r = run_quickstart(args.workdir, epochs=args.epochs)
    print("\nquickstart finished")
    print(f"  dataset:      {r.data}")
    print(f"  run:          {r.run}")
    print(f"  model:        {r.model}")
    for name, path in r.outputs.items():
        print(f"  {name + ':':<13} {path}")
    print(f"  valid top-1:  {r.valid_top1:.3f}")
    if r.test_top1 is not None:
        print(f"  test top-1:   {r.test_top1:.3f}")
    print("  prediction:   " + ", ".join(f"{label} {p:.3f}" for label, p in r.predictions))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="the whole local path on a generated sample dataset",
        description="Generate sample data, train ResNet50, evaluate, predict; prints where it all is.",
    )
    p.add_argument("--workdir", default="quickstart", help="folder for data and runs (default ./quickstart)")
    p.add_argument("--epochs", type=int, help="override the number of training epochs")
    p.set_defaults(func=_run)
