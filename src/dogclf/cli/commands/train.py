"""`dogclf train`."""

from __future__ import annotations

import argparse

from dogclf.cli.options import add_set_option, parse_set
from dogclf.config import RunConfig
from dogclf.hyperparameters import add_hyperparameter_flags, overrides_from_namespace

TRACKING_CHOICES = ("tensorboard", "mlflow", "none")


def add_train_options(p: argparse.ArgumentParser) -> None:
    """--config, every hyperparameter flag and --set: shared by everything that trains."""
    p.add_argument("--config", help="YAML/JSON config file (flags override it)")
    add_hyperparameter_flags(p)
    add_set_option(p)


def add_tracking_option(p: argparse.ArgumentParser) -> None:
    """--tracking (repeatable): where `dogclf train` and `dogclf tune` report metrics."""
    p.add_argument(
        "--tracking",
        action="append",
        choices=TRACKING_CHOICES,
        help="also log to MLflow (mlflow), or turn TensorBoard on/off (tensorboard, none); repeatable "
        "[default: tensorboard, plus mlflow when MLFLOW_TRACKING_URI is set]",
    )


def tracking_overrides(values: list[str] | None) -> dict[str, bool]:
    """Config overrides of --tracking: 'none' turns both off, then each named tracker is turned on."""
    values = values or []
    out = {"tracking.tensorboard": False, "tracking.mlflow": False} if "none" in values else {}
    out.update({f"tracking.{v}": True for v in values if v != "none"})
    return out


def build_run_config(args: argparse.Namespace, base: dict | None = None) -> RunConfig:
    """RunConfig from defaults < base < --config < flags < --set."""
    from dogclf.config import build_config

    overrides = overrides_from_namespace(args)
    if getattr(args, "data", None):
        overrides["data.root"] = args.data
    overrides.update(tracking_overrides(getattr(args, "tracking", None)))
    overrides.update(parse_set(getattr(args, "set", None)))
    return build_config(args.config, overrides, base=base)


def _run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from dogclf.cli import process
    from dogclf.training import train
    from dogclf.training.rundir import RunPaths

    cfg = build_run_config(args)
    summary = RunPaths(Path(args.output)).summary
    if args.resume and summary.exists():
        print(f"dogclf: {args.output} already finished ({summary}); nothing to resume", file=sys.stderr)
        return 0
    process.preload(["dogclf.training.loop"])  # torch, torchvision and the loop, once the config is valid
    result = train(cfg, args.output, resume=args.resume)
    print(f"run: {result.run_dir}")
    print(f"model: {result.artifact_dir}")
    print(f"plots: {result.run_dir / 'plots'}")
    for jump in result.unstable:
        print(f"warning: unstable training: {jump}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf train`."""
    p = sub.add_parser(
        "train",
        help="fine-tune a model on an ImageFolder dataset",
        description="Train, keep the best epoch on valid, evaluate it once on test, write RUN/model/.",
    )
    p.add_argument("--data", help="dataset root: train/ valid/ [test/] class folders, or one flat folder")
    p.add_argument("--output", "-o", required=True, help="run folder to create (or resume)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    add_train_options(p)
    add_tracking_option(p)
    p.set_defaults(func=_run)
