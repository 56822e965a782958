"""`dogclf tune`: local hyperparameter search with Optuna (resumable, optional parallel workers)."""

from __future__ import annotations

import argparse

from dogclf.cli.commands.train import add_tracking_option, add_train_options, build_run_config
from dogclf.tune.space import PRUNERS, SPACE_NAMES
from dogclf.tune.workers import HEARTBEAT


def _run(args: argparse.Namespace) -> int:
    from dogclf.extras import require

    require("optuna", "tune", "dogclf tune needs optuna")
    from dogclf.errors import ConfigError
    from dogclf.tune.results import format_differences, format_table
    from dogclf.tune.space import resolve_space
    from dogclf.tune.storage import study_status
    from dogclf.tune.study import tune

    if args.status:
        print(study_status(args.output, args.storage, args.study_name))
        return 0
    if args.output is None:
        raise ConfigError("--output is required (a tune folder; only --status reads a study without one)")
    cfg = build_run_config(args)
    if cfg.tracking.mlflow_enabled():
        require("mlflow", "mlflow", "--tracking mlflow needs mlflow")  # before the trials, not after them
    name, space = resolve_space(args.space, cfg)
    print(f"search space: {name}: " + ", ".join(f"{k} {_describe(p)}" for k, p in space.parameters.items()))
    result = tune(
        cfg,
        space,
        args.output,
        n_trials=args.n_trials,
        jobs=args.jobs,
        storage=args.storage,
        study_name=args.study_name,
        pruner=args.pruner,
        feature_cache=not args.no_feature_cache,
        cache_dir=args.feature_cache_dir,
        final_train=args.final_train,
        heartbeat=args.heartbeat,
    )
    print(format_table(result.rows))
    print(f"best: trial {result.best_trial} {space.objective}={result.best_value:.6g} {result.best_params}")
    print(f"table: {result.table}")
    print(f"plots: {', '.join(str(p) for p in result.plots)}")
    print(f"config: {result.config}  (dogclf train --config {result.config} --output RUN)")
    if len(result.workers) > 1:
        print("finished trials per worker: " + ", ".join(f"{w} {n}" for w, n in sorted(result.workers.items())))
    if result.final_run is not None:
        print(f"final run: {result.final_run}")
    if result.differences:
        print(format_differences(result.differences))
    return 0


def _describe(param: object) -> str:
    values = getattr(param, "values", None)
    if values is not None:
        return f"in {values}"
    return f"{param.min:g}..{param.max:g} ({param.scale})"


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf tune`."""
    p = sub.add_parser(
        "tune",
        help="search hyperparameters locally (Optuna: TPE + pruning, resumable)",
        description="Tune over a search space (default: the built-in space for the optimizer and freeze mode, "
        f"one of {', '.join(SPACE_NAMES)}; course: lr 1e-3..1e-1 log x batch-size in [20,34,40,60,75]) "
        "minimizing validation loss. With --freeze backbone and --augment false, trials train heads from "
        "cached backbone features. Rerun the same command to resume an interrupted study.",
    )
    p.add_argument("--data", help="dataset root: train/ valid/ [test/] class folders, or one flat folder")
    p.add_argument("--output", "-o", help="tune folder (required): study.db, results.csv, plots/, best_config.yaml")
    p.add_argument(
        "--space",
        metavar="NAME|FILE",
        help=f"a built-in space ({', '.join(SPACE_NAMES)}) or a YAML/JSON file "
        "[default: OPTIMIZER-FREEZE, e.g. adamw-nothing; OPTIMIZER-scratch for freeze nothing from random init]",
    )
    p.add_argument(
        "--n-trials",
        type=int,
        help="finished trials the study should hold; a rerun adds only "
        "what is missing, a larger value adds more [default: the space's max_trials]",
    )
    p.add_argument("--jobs", type=int, help="parallel worker processes [default: the space's parallel_trials]")
    p.add_argument("--storage", help="Optuna RDB URL shared by many machines [default: sqlite in --output]")
    p.add_argument("--study-name", default="dogclf", help="study name in the storage [default: dogclf]")
    p.add_argument(
        "--heartbeat",
        type=int,
        default=HEARTBEAT,
        metavar="SECONDS",
        help="seconds between a running trial's heartbeats; a trial silent for 4 of them (its worker died) "
        f"is failed and run again by another worker [default: {HEARTBEAT}]",
    )
    p.add_argument(
        "--status",
        action="store_true",
        help="print the study's progress from --storage (or --output's study.db) and exit: budget, "
        "trials by state and worker, best, the table",
    )
    p.add_argument(
        "--pruner",
        choices=PRUNERS,
        help="prune on per-epoch objective [default: median if space has early_stopping]",
    )
    p.add_argument("--no-feature-cache", action="store_true", help="always run the full trainer per trial")
    p.add_argument("--feature-cache-dir", help="where cached backbone features live [default: OUTPUT/feature_cache]")
    p.add_argument("--final-train", action="store_true", help="train the best config in OUTPUT/final/ afterwards")
    add_train_options(p)
    add_tracking_option(p)
    p.set_defaults(func=_run)
