"""`dogclf sagemaker` actions: train, tune, best-params, deploy, delete-endpoint, batch jobs, dockerfile, reports."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from dogclf.cli.commands.train import add_train_options, build_run_config
from dogclf.cli.options import Flag, add_model_options, model_values
from dogclf.cli.sagemaker_registry import add_aws_options as _common
from dogclf.cli.sagemaker_registry import add_registry_actions
from dogclf.cli.sagemaker_registry import connection as _connection
from dogclf.cli.sagemaker_serving import register_dockerfile, serving_flags
from dogclf.sagemaker.batch import TransformOptions
from dogclf.sagemaker.endpoints import DeployOptions
from dogclf.sagemaker.estimators import EstimatorOptions
from dogclf.tune.space import SearchSpace

_SPACE_HELP = (
    "a built-in space (see dogclf tune --help) or a YAML/JSON file [default: course (lr log 0.001-0.1, "
    "batch-size categorical) with a frozen backbone, else OPTIMIZER-FREEZE]"
)
# The EstimatorOptions fields both job actions take, as flags; `train` adds TRAIN_FLAGS.
JOB_FLAGS = {
    "role": Flag(),
    "instance_type": Flag(),
    "instance_count": Flag(),
    "keep_alive_s": Flag("--keep-alive", metavar="SECONDS"),
    "spot": Flag(),
    "max_run_s": Flag("--max-run", metavar="SECONDS"),
    "max_wait_s": Flag("--max-wait", metavar="SECONDS"),
    "checkpoint_s3_uri": Flag(),
    "debugger": Flag("--no-debugger"),
    "builtin_rules": Flag("--rule"),
    "custom_rules": Flag("--custom-rule"),
    "rule_image_uri": Flag(),
    "profiler": Flag("--no-profiler"),
    "system_monitor_interval_ms": Flag("--system-monitor-ms"),
    "tags": Flag("--tag"),
}
TRAIN_FLAGS = {"stop_on_rules": Flag("--stop-on-rule", metavar="RULE,..."), "sagemaker_debugger": Flag()}
SPACE_FLAGS = {"max_trials": Flag(), "parallel_trials": Flag(), "strategy": Flag()}
DEPLOY_FLAGS = serving_flags(
    endpoint_name=Flag(),
    instance_type=Flag(),
    instance_count=Flag(),
    serverless_memory_mb=Flag("--serverless-memory", metavar="MB"),
    serverless_max_concurrency=Flag("--serverless-concurrency"),
    autoscale_max_instances=Flag("--autoscale-max", metavar="N"),
)
BATCH_FLAGS = serving_flags(instance_type=Flag(), instance_count=Flag(), topk=Flag(), job_name=Flag())
MODEL_HELP = (
    "s3://.../model.tar.gz (a training job's model artifact), a model package ARN (`dogclf sagemaker register`; "
    "Approved, unless --force), or a local run or model folder (packaged, uploaded)"
)


def _data_uri(conn, data: str) -> str:
    """An s3:// prefix that holds objects as is; a local folder is synced to s3://bucket/prefix/data/<its name> first.

    The folder keeps the name it is given by (a symlink's own name, not its target's), which the docs' next
    commands use.
    """
    from dogclf.sagemaker import prefix_exists, upload_folder

    client = conn.s3_client()
    if data.startswith("s3://"):
        if not prefix_exists(data, client):
            from dogclf.errors import ConfigError

            raise ConfigError(f"--data {data}: no objects under this S3 prefix (upload the dataset first)")
        return data
    uri = conn.s3_uri("data", Path(os.path.abspath(data)).name)
    result = upload_folder(data, uri, client=client)
    print(f"data: {uri} ({len(result.transferred)} uploaded, {len(result.skipped)} unchanged)")
    return uri


def _service_only(args: argparse.Namespace) -> None:
    """Refuse the Debugger-service flags without --sagemaker-debugger (the rules inside the job take none)."""
    from dogclf.errors import ConfigError

    given = [flag for flag, value in (("--rule", args.builtin_rules), ("--custom-rule", args.custom_rules),
             ("--rule-image-uri", args.rule_image_uri)) if value]  # fmt: skip
    if given and not getattr(args, "sagemaker_debugger", False):
        raise ConfigError(f"{given[0]} configures the SageMaker Debugger service: add --sagemaker-debugger")


def _estimator_options(args: argparse.Namespace, mode: str) -> EstimatorOptions:
    """The job's EstimatorOptions: the flags given, the model's defaults for the rest."""
    if mode == "train":
        _service_only(args)
    fields = {**JOB_FLAGS, **TRAIN_FLAGS} if mode == "train" else JOB_FLAGS
    return EstimatorOptions(mode=mode, **model_values(args, EstimatorOptions, fields))


def _train(args: argparse.Namespace) -> int:
    from dogclf.sagemaker import make_estimator, submit
    from dogclf.sagemaker.names import job_name

    cfg = build_run_config(args)
    conn = _connection(args)
    estimator = make_estimator(cfg, conn, _estimator_options(args, "train"))
    name = job_name(args.job_name, "dogclf", "training")
    name = submit(conn, estimator, _data_uri(conn, args.data), wait=args.wait, job_name=name)
    print(f"training job: {name}")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from dogclf.sagemaker import make_estimator, make_tuner, submit
    from dogclf.sagemaker.names import job_name
    from dogclf.sagemaker.tuners import job_space

    name = job_name(args.job_name, "dogclf-tune", "tuning")
    cfg = build_run_config(args)
    _refuse_dropped(args, cfg)
    space = job_space(args.space, cfg)
    updates = model_values(args, SearchSpace, SPACE_FLAGS)
    space = space.model_validate({**space.model_dump(), **updates}) if updates else space
    conn = _connection(args)
    estimator = make_estimator(cfg, conn, _estimator_options(args, "hpo"))
    tuner = make_tuner(estimator, space, warm_start_from=args.warm_start or ())
    name = submit(conn, tuner, _data_uri(conn, args.data), wait=args.wait, job_name=name)
    print(f"tuning job: {name}")
    return 0


def _refuse_dropped(args: argparse.Namespace, cfg) -> None:
    """Tuning trials run with no checkpoints, debug hook or profiler: asking for them is an error, not a no-op."""
    from dogclf.errors import ConfigError

    dropped = [
        flag
        for flag, given in (
            ("--checkpoint-s3-uri", args.checkpoint_s3_uri),
            ("--debug", cfg.debug.enabled or cfg.debug.live_rules),
            ("--profile", cfg.profile.enabled),
        )
        if given
    ]
    if dropped:
        raise ConfigError(
            f"sagemaker tune: {', '.join(dropped)} would be ignored (tuning trials run without checkpoints, "
            "debug hook or profiler); train the best config with `dogclf sagemaker train` for those"
        )


def _best_params(args: argparse.Namespace) -> int:
    from dogclf.sagemaker import best_params

    best = best_params(_connection(args), args.job, args.output)
    origin = f" (best of tuning job {best.tuning_job})" if best.tuning_job else ""
    print(f"training job: {best.training_job}{origin}")
    if best.objective:
        print(f"objective: {best.objective.get('MetricName')} = {best.objective.get('Value')}")
    for name, value in sorted(best.hyperparameters.items()):
        print(f"  {name} = {value}")
    print(f"config: {args.output}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from dogclf.sagemaker import deploy

    options = DeployOptions(**model_values(args, DeployOptions, DEPLOY_FLAGS))
    conn = _connection(args)
    predictor = deploy(conn, _model_data(conn, args), options)
    print(f"endpoint: {predictor.endpoint_name} (creating; delete with `dogclf sagemaker delete-endpoint`)")
    return 0


def _model_data(conn, args: argparse.Namespace) -> str:
    """MODEL_DATA as is, or a model package's model data (Approved, unless --force)."""
    from dogclf.sagemaker import is_package_arn, package_model_data

    if not is_package_arn(args.model_data):
        return args.model_data
    return package_model_data(conn, args.model_data, force=args.force)


def _delete_endpoint(args: argparse.Namespace) -> int:
    from dogclf.sagemaker import delete_endpoint

    conn = _connection(args, needs_bucket=False)  # deleting touches no S3: no default bucket is made for it
    for item in delete_endpoint(conn, args.endpoint_name, delete_model=not args.keep_model):
        print(f"deleted {item}")
    return 0


def _batch_predict(args: argparse.Namespace) -> int:
    from dogclf.sagemaker import batch_transform

    options = TransformOptions(**model_values(args, TransformOptions, BATCH_FLAGS))
    conn = _connection(args)
    name = batch_transform(conn, _model_data(conn, args), args.input, args.output, options, wait=args.wait)
    done = "completed" if args.wait else "started"
    print(f"transform job: {name} ({done}; results: dogclf sagemaker batch-results {args.output})")
    return 0


def _batch_results(args: argparse.Namespace) -> int:
    from dogclf.errors import ConfigError
    from dogclf.fsutil import atomic_write_text
    from dogclf.prediction_table import predictions_csv
    from dogclf.sagemaker import batch_results, make_client

    output = Path(args.csv)
    if output.suffix != ".csv":
        raise ConfigError(f"--output must end in .csv, got {output}")
    client = make_client(args.endpoint_url, args.region)
    rows = batch_results(args.output, args.input_prefix, client=client)
    topk = max(len(r.labels) for r in rows)
    atomic_write_text(output, predictions_csv(rows, topk))
    failed = sum(1 for r in rows if r.error)
    print(f"wrote {len(rows)} predictions (top {topk}) to {output}" + (f"; {failed} without output" if failed else ""))
    return 1 if failed else 0


def _profiler_report(args: argparse.Namespace) -> int:
    from dogclf.sagemaker import download_profiler_report

    files = download_profiler_report(_connection(args), args.job, args.output)
    html = [f for f in files if f.suffix == ".html"]
    print(f"profiler report: {html[0] if html else args.output} ({len(files)} files)")
    return 0


def _reports(args: argparse.Namespace) -> int:
    from dogclf.debug.engine import format_rules
    from dogclf.sagemaker import download_job_reports

    got = download_job_reports(_connection(args), args.job, args.output)
    for title, results in (("debug rules", got.verdicts.debug), ("profiler rules", got.verdicts.profiler)):
        if results:
            print(f"{title}:\n{format_rules(results)}")
    stopped = got.verdicts.stop_reason()
    if stopped:
        print(f"stopped: {stopped}")
    for path in got.files:
        print(f"wrote {path}")
    return 0


def _job_options(p: argparse.ArgumentParser, train: bool = False) -> None:
    """The flags of a job action: --data, the EstimatorOptions flags, --wait, --job-name and the run config's."""
    p.add_argument("--data", required=True, help="s3:// URI or a local ImageFolder (uploaded, unchanged files skipped)")
    add_model_options(p, EstimatorOptions, {**JOB_FLAGS, **TRAIN_FLAGS} if train else JOB_FLAGS)
    p.add_argument("--wait", action="store_true", help="stream the job's logs until it ends")
    p.add_argument("--job-name", help="the job's name (default: dogclf[-tune]-YYMMDD-HHMMSS-<random>, unique)")
    add_train_options(p)
    _common(p)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dogclf sagemaker` and its job, endpoint and report actions."""
    p = sub.add_parser("sagemaker", help="train, tune and deploy on Amazon SageMaker")
    sm = p.add_subparsers(dest="sagemaker_command", metavar="ACTION", required=True)

    _register_train(sm)

    t = sm.add_parser("tune", help="submit a hyperparameter tuning job")
    _job_options(t)
    t.add_argument("--space", metavar="NAME|FILE", help=_SPACE_HELP)
    add_model_options(t, SearchSpace, SPACE_FLAGS)
    t.add_argument("--warm-start", action="append", metavar="TUNING_JOB", help="parent tuning job; repeatable")
    t.set_defaults(func=_tune)

    t = sm.add_parser("best-params", help="best training job of a tuning job, written as a dogclf config")
    t.add_argument("job", help="tuning job name (or a training job name)")
    t.add_argument("--output", "-o", default="best.yaml", help="config file to write (default best.yaml)")
    _common(t)
    t.set_defaults(func=_best_params)

    _register_deploy(sm)

    t = sm.add_parser("delete-endpoint", help="delete an endpoint, its config and its model")
    t.add_argument("endpoint_name")
    t.add_argument("--keep-model", action="store_true")
    _common(t)
    t.set_defaults(func=_delete_endpoint)

    _register_batch(sm)
    register_dockerfile(sm)
    _register_reports(sm)
    add_registry_actions(sm)


def _register_train(sm: argparse._SubParsersAction) -> None:
    """Add `train`."""
    t = sm.add_parser(
        "train",
        help="submit a training job",
        description="Submit a training job: dogclf's packaged entry script (dogclf/entrypoints/train.py), a copy "
        "of the dogclf package and the resolved config, run in the SageMaker PyTorch container. The job saves "
        "tensors with dogclf's hook, runs dogclf's rules (live and at the end) and profiles itself; verdicts and "
        "reports land in its output.tar.gz (`dogclf sagemaker reports JOB`), each verdict also a rule:<name> "
        "metric. No SageMaker Debugger or Profiler service is used unless --sagemaker-debugger.",
    )
    _job_options(t, train=True)
    t.set_defaults(func=_train)


def _register_reports(sm: argparse._SubParsersAction) -> None:
    """Add `reports` (the job's own) and `profiler-report` (the Profiler service's)."""
    t = sm.add_parser(
        "reports",
        help="a training job's rule verdicts, debug report and profiler report (from its output.tar.gz)",
        description="Download only rule-verdicts.json, debug/report.html and profile/report.html from the job's "
        "output.tar.gz (written by the rules and profiler inside the job) and print the verdicts.",
    )
    t.add_argument("job", help="training job name")
    t.add_argument("--output", "-o", default="reports", help="folder to write (default reports)")
    _common(t)
    t.set_defaults(func=_reports)

    t = sm.add_parser(
        "profiler-report", help="download the ProfilerReport of a job run with --sagemaker-debugger from S3"
    )
    t.add_argument("job", help="training job name")
    t.add_argument("--output", "-o", default="profiler-report", help="folder to write (default profiler-report)")
    _common(t)
    t.set_defaults(func=_profiler_report)


def _register_deploy(sm: argparse._SubParsersAction) -> None:
    """Add `deploy`."""
    t = sm.add_parser("deploy", help="create an endpoint for a model.tar.gz in S3, a model package or a local model")
    t.add_argument("model_data", help=MODEL_HELP)
    t.add_argument("--force", action="store_true", help="serve a model package that is not Approved")
    add_model_options(t, DeployOptions, DEPLOY_FLAGS)
    _common(t)
    t.set_defaults(func=_deploy)


def _register_batch(sm: argparse._SubParsersAction) -> None:
    """Add `batch-predict` and `batch-results`."""
    t = sm.add_parser(
        "batch-predict",
        help="run a Batch Transform job over images in S3",
        description="Run the deploy model (same image, handlers and code) over every image under --input: one "
        "request per image, each answer written to --output as <image key>.out (JSON top-k).",
    )
    t.add_argument("model_data", help=MODEL_HELP)
    t.add_argument("--force", action="store_true", help="run a model package that is not Approved")
    t.add_argument("--input", required=True, help="s3://.../images/: every object under it is one image")
    t.add_argument("--output", required=True, help="s3://.../out/ for the .out files")
    add_model_options(t, TransformOptions, BATCH_FLAGS)
    t.add_argument("--wait", action="store_true", help="poll until the job ends; exit 2 if it does not complete")
    _common(t)
    t.set_defaults(func=_batch_predict)

    t = sm.add_parser(
        "batch-results",
        help="a transform job's .out files as one predictions CSV",
        description="Read the .out files under OUTPUT (s3:// or a downloaded folder) into the CSV of "
        "`dogclf predict --output` (same columns); exits 1 when some input image has no output.",
    )
    t.add_argument("output", help="the job's output: s3://.../out/ or a local copy of it")
    t.add_argument("--input-prefix", help="the job's input s3://.../images/: paths become its URIs, gaps are listed")
    t.add_argument("-o", "--output-csv", dest="csv", default="predictions.csv", help="CSV to write")
    _common(t)
    t.set_defaults(func=_batch_results)
