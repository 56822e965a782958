"""`dogclf quickstart`: the whole local path on generated data, then where everything it made is."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from dogclf.cli.options import add_set_option, library_defaults, parse_set
from dogclf.config import normalize_freeze

if TYPE_CHECKING:
    from dogclf.quickstart import QuickstartResult


def _top(pairs: list[tuple[str, float]]) -> str:
    return ", ".join(f"{label} {p:.3f}" for label, p in pairs)


def _losses(values: list[float]) -> str:
    return " ".join(f"{v:.4g}" for v in values)


def _print_soundness(r: QuickstartResult) -> None:
    from dogclf.tune.results import format_differences

    print("\nvalid loss per epoch:")
    for number, losses in r.trial_valid_losses.items():
        print(f"  trial {number}:  {_losses(losses)}")
    print(f"  final run: {_losses(r.final_valid_losses)}")
    if r.differences:
        print(format_differences(r.differences))
    print(
        "training: "
        + ("; ".join(r.problems) if r.problems else "no diverging or unstable trial or epoch; final run converged")
    )


def _print_summary(r: QuickstartResult) -> None:
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.best_params.items())
    fired = [x.rule for x in r.profiler_rules if x.triggered]
    print("\nquickstart finished")
    print(f"  tuned:           {params} (study in {r.tune_dir})")
    print(f"  valid top-1:     {r.valid_top1:.3f}")
    if r.test_top1 is not None:
        print(f"  test top-1:      {r.test_top1:.3f}")
    print(f"  profiler rules:  {len(fired)} fired{': ' + ', '.join(fired) if fired else ''}")
    print(f"  endpoint top-3:  {_top(r.endpoint_top3)}")
    print(f"  predict top-3:   {_top(r.predictions)}")
    print(f"  dataset:         {r.data}")
    print(f"  run:             {r.run}")
    print(f"  model:           {r.model}")
    print(f"  tarball:         {r.tarball}")
    for name, path in r.outputs.items():
        print(f"  {name + ':':<16} {path}")


def _run(args: argparse.Namespace) -> int:
    from dogclf.debug.engine import format_rules
    from dogclf.quickstart import run_quickstart

    overrides = {"model.arch": args.arch, "model.weights": args.weights, "model.freeze": args.freeze}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    r = run_quickstart(
        args.workdir,
        classes=args.classes,
        per_class=args.per_class,
        epochs=args.epochs,
        trials=args.trials,
        tune_epochs=args.tune_epochs,
        image_size=args.image_size,
        overrides={**overrides, **parse_set(args.set)},
    )
    print("\ndebugger rules:")
    print(format_rules(r.debug_rules))
    _print_soundness(r)
    _print_summary(r)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf quickstart`."""
    p = sub.add_parser(
        "quickstart",
        help="the whole local path on a generated sample dataset",
        description="Generate sample data, tune lr and batch size (Optuna), train ResNet50 with the best ones "
        "(profiler and debug hook on), evaluate, check the debugger rules, write the profiler and debug reports, "
        "package model.tar.gz, query it on a local endpoint, predict; prints where it all is. Rerunning in the "
        "same --workdir reuses the data and makes new tune/ and runs/ folders.",
    )
    from dogclf.quickstart import run_quickstart

    d = library_defaults(run_quickstart)
    p.add_argument(
        "--workdir", default=d["workdir"], help=f"folder for data, tuning and runs (default ./{d['workdir']})"
    )
    p.add_argument("--epochs", type=int, help="training epochs (default 6)")
    p.add_argument("--trials", type=int, default=d["trials"], help=f"tuning trials (default {d['trials']})")
    p.add_argument(
        "--tune-epochs",
        type=int,
        default=d["tune_epochs"],
        help=f"epochs per tuning trial (default {d['tune_epochs']})",
    )
    p.add_argument("--arch", help="architecture (default resnet50)")
    p.add_argument(
        "--weights", help="none (default: nothing to download) | imagenet (needs internet or the torch cache) | PATH"
    )
    p.add_argument(
        "--freeze",
        type=normalize_freeze,
        choices=["backbone", "nothing", "staged"],
        help="what stays frozen (default nothing; the old names head and full still work); with "
        "pretrained --weights, staged or backbone tune the head from cached features",
    )
    p.add_argument(
        "--classes", type=int, default=d["classes"], help=f"classes in the sample dataset (default {d['classes']})"
    )
    p.add_argument(
        "--per-class", type=int, default=d["per_class"], help=f"training images per class (default {d['per_class']})"
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=d["image_size"],
        help=f"image side in px, generated and trained (default {d['image_size']})",
    )
    add_set_option(p)
    p.set_defaults(func=_run)
