"""`dogclf train`."""

from __future__ import annotations

import argparse

from dogclf.cli.options import add_set_option, parse_set
from dogclf.config import RunConfig
from dogclf.hyperparameters import add_hyperparameter_flags, overrides_from_namespace


def add_train_options(p: argparse.ArgumentParser) -> None:
    """--config, every hyperparameter flag and --set: shared by everything that trains."""
    p.add_argument("--config", help="YAML/JSON config file (flags override it)")
    add_hyperparameter_flags(p)
    add_set_option(p)


def build_run_config(args: argparse.Namespace, base: dict | None = None) -> RunConfig:
    """RunConfig from defaults < base < --config < flags < --set."""
    from dogclf.config import build_config

    overrides = overrides_from_namespace(args)
    if getattr(args, "data", None):
        overrides["data.root"] = args.data
    overrides.update(parse_set(getattr(args, "set", None)))
    return build_config(args.config, overrides, base=base)


def _run(args: argparse.Namespace) -> int:
    from dogclf.training import train

    result = train(build_run_config(args), args.output, resume=args.resume)
    print(f"run: {result.run_dir}")
    print(f"model: {result.artifact_dir}")
    print(f"plots: {result.run_dir / 'plots'}")
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
    p.set_defaults(func=_run)
