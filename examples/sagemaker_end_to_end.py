"""The SageMaker path end to end, in plain dogclf API calls.

1. upload an ImageFolder to S3                 5. download the job's rule verdicts, debug and profiler reports
2. tuning job over the classic ranges          6. deploy the model to an ml.m5.large endpoint
   (lr 0.001-0.1 log, batch-size [20..75])     7. query the endpoint with a test image
3. wait, read the best hyperparameters         8. delete the endpoint (also after an error)
4. training job with them: dogclf's rules, reports and profiler inside the job (no Debugger or Profiler
   service: Debugger is closed to new customers since 2026-07-30, the Profiler ends on 2027-06-30)

python examples/sagemaker_end_to_end.py --role arn:aws:iam::123456789012:role/SageMakerRole \\
    [--bucket my-bucket] --region us-west-2 [--data path/to/dogImages] [--spot]

This starts paid AWS resources (tuning trials and a training job on --instance-type, an endpoint); the
endpoint is deleted at the end unless --keep-endpoint. With --endpoint-url every AWS client talks to that URL
instead, e.g. a moto server on 127.0.0.1: every request up to deploy goes through, and the
steps that need a job to have really run (its best trial, its model.tar.gz, its reports) are skipped with a
notice, because the job left no such outputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dogclf
import dogclf.sagemaker as sm
from dogclf.errors import DogclfError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--role", required=True, help="IAM role ARN that the jobs and the endpoint run as")
    p.add_argument("--bucket", help="S3 bucket for data, code, outputs (default: sagemaker-REGION-ACCOUNT, created)")
    p.add_argument("--region", help="AWS region (default: the boto3 configuration)")
    p.add_argument("--endpoint-url", help="one URL for every AWS client, e.g. a moto server http://127.0.0.1:5000")
    p.add_argument("--prefix", default="dogclf", help="key prefix inside the bucket (default dogclf)")
    p.add_argument("--data", type=Path, help="local ImageFolder (train/ valid/ test/); default: a generated sample")
    p.add_argument("--output", type=Path, default=Path("sagemaker-run"), help="local folder for reports and config")
    p.add_argument("--arch", default="resnet50", help="backbone (ImageNet weights, head trained)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--instance-type", default="ml.g4dn.xlarge", help="training and tuning instances")
    p.add_argument("--spot", action="store_true", help="managed spot training (cheaper, may be interrupted)")
    p.add_argument("--max-trials", type=int, default=8, help="tuning trials (default 8)")
    p.add_argument("--parallel-trials", type=int, default=2)
    p.add_argument("--endpoint-instance-type", default="ml.m5.large")
    p.add_argument("--endpoint-name", help="default: dogclf-<timestamp>")
    p.add_argument("--image", type=Path, help="image to send to the endpoint (default: one from the test split)")
    p.add_argument("--keep-endpoint", action="store_true", help="leave the endpoint running (it costs per hour)")
    p.add_argument("--poll-seconds", type=float, default=60.0, help="how often to check on jobs")
    return p.parse_args(argv)


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def skipped(what: str, why: str) -> None:
    print(f"[skipped] {what}: {why}", flush=True)


def status_printer(what: str):
    return lambda status: print(f"  {what}: {status}", flush=True)


def local_data(args: argparse.Namespace) -> Path:
    """The ImageFolder to upload: --data, or a small generated sample (5 breeds, 64 px) kept in --output."""
    if args.data is not None:
        return args.data
    root = args.output / "sample" / "dogs"
    if not root.is_dir():
        print(f"  generating a sample dataset in {root}")
        dogclf.make_dataset(root, classes=5, per_class=24, size=64)
    return root


def upload(conn: sm.Connection, data: Path) -> str:
    """Sync the folder to s3://bucket/prefix/data/<name>; unchanged files are skipped on a rerun."""
    from dogclf.sagemaker.s3 import upload_folder

    uri = conn.s3_uri("data", data.resolve().name)
    result = upload_folder(data, uri, client=conn.s3_client())
    print(f"  {uri}: {len(result.transferred)} uploaded, {len(result.skipped)} unchanged")
    return uri


def tune(conn: sm.Connection, args: argparse.Namespace, cfg: dogclf.RunConfig, data_uri: str) -> dogclf.RunConfig:
    """Tuning job over the default search space; returns the config of the best trial (or cfg, with a notice)."""
    from dogclf.tune.space import SearchSpace, default_space

    limits = {"max_trials": args.max_trials, "parallel_trials": args.parallel_trials}
    space = SearchSpace.model_validate({**default_space().model_dump(), **limits})
    options = sm.EstimatorOptions(role=args.role, mode="hpo", instance_type=args.instance_type, spot=args.spot)
    tuner = sm.make_tuner(sm.make_estimator(cfg, conn, options), space)
    name = sm.submit(conn, tuner, data_uri)
    print(f"  tuning job {name}: {space.max_trials} trials, objective {space.direction} {space.objective}")
    desc = sm.wait_for(conn, "tuning", name, args.poll_seconds, progress=status_printer(name))
    status = desc["HyperParameterTuningJobStatus"]
    if status != "Completed":
        raise sm.SageMakerError(f"tuning job {name} ended {status}: {desc.get('FailureReason')}")
    try:
        best = sm.best_params(conn, name, args.output / "best.yaml")
    except sm.SageMakerError as exc:  # the job names a best trial that does not exist: no trial really ran
        fallback = f"training with the starting lr={cfg.optim.lr} batch-size={cfg.data.batch_size} instead"
        skipped("best hyperparameters", f"{str(exc).rstrip('.')}; {fallback}")
        return cfg
    objective = best.objective or {}
    print(f"  best trial {best.training_job}: {objective.get('MetricName')} = {objective.get('Value')}")
    print(f"  lr={best.config.optim.lr} batch-size={best.config.data.batch_size} (config: {args.output / 'best.yaml'})")
    return best.config


def train(conn: sm.Connection, args: argparse.Namespace, cfg: dogclf.RunConfig, data_uri: str) -> sm.TrainingOutputs:
    """Training job running dogclf's rules (live and at the end) and profiler inside it; waits for it to end."""
    options = sm.EstimatorOptions(role=args.role, mode="train", instance_type=args.instance_type, spot=args.spot)
    name = sm.submit(conn, sm.make_estimator(cfg, conn, options), data_uri)
    print(f"  training job {name}: dogclf's rules and profiler inside the job, verdicts as rule:<name> metrics")
    sm.wait_for(conn, "training", name, args.poll_seconds, progress=status_printer(name))
    outputs = sm.training_outputs(conn, name)
    if outputs.status != "Completed":
        raise sm.SageMakerError(f"training job {name} ended {outputs.status}: {outputs.failure_reason}")
    return outputs


def reports(conn: sm.Connection, args: argparse.Namespace, outputs: sm.TrainingOutputs) -> None:
    """Download the verdicts and both reports from the job's output.tar.gz; print the verdicts."""
    if not outputs.ran:
        skipped("rule verdicts and reports", f"no model artifact at {outputs.model_data}, so the job ran nothing")
        return
    got = sm.download_job_reports(conn, outputs.job_name, args.output / "reports")
    for verdict in got.verdicts.debug + got.verdicts.profiler:
        print(f"  {verdict.rule}: {verdict.status}")
    html = [f for f in got.files if f.suffix == ".html"]
    print(f"  {len(got.files)} files in {args.output / 'reports'}" + (f"; open {html[0]}" if html else ""))


def deploy(conn: sm.Connection, args: argparse.Namespace, outputs: sm.TrainingOutputs) -> str:
    """Create model, endpoint config and endpoint for the job's model.tar.gz (no wait); returns the endpoint name."""
    options = sm.DeployOptions(
        role=args.role,
        endpoint_name=args.endpoint_name,
        instance_type=args.endpoint_instance_type,
        code_in_model=True,  # a dogclf training job puts code/ into its model.tar.gz: no repack, no download
    )
    name = sm.deploy(conn, outputs.model_data, options).endpoint_name
    print(f"  endpoint {name} on {args.endpoint_instance_type}")
    return name


def wait_in_service(conn: sm.Connection, args: argparse.Namespace, endpoint: str) -> None:
    desc = sm.wait_for(conn, "endpoint", endpoint, args.poll_seconds, progress=status_printer(endpoint))
    if desc["EndpointStatus"] != "InService":
        raise sm.SageMakerError(f"endpoint {endpoint} is {desc['EndpointStatus']}: {desc.get('FailureReason')}")


def pick_image(args: argparse.Namespace, data: Path) -> Path:
    """--image, else the first image of the test (or valid) split."""
    if args.image is not None:
        return args.image
    for split in ("test", "valid"):
        found = sorted(p for p in (data / split).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if found:
            return found[0]
    raise DogclfError(f"no test image under {data}/test or {data}/valid; pass --image")


def query(conn: sm.Connection, endpoint: str, image: Path, outputs: sm.TrainingOutputs) -> None:
    """Send one image and print the top-3 breeds."""
    if not outputs.ran:
        skipped("query the endpoint", f"it serves {outputs.model_data}, which the training job never wrote")
        return
    answer = sm.invoke_endpoint(conn, endpoint, image, topk=3)
    print(f"  {image.name} (model {answer.get('model_version')}):")
    for guess in answer["predictions"][0]:
        print(f"    {guess['label']:<30} {guess['probability']:.3f}")


def delete(conn: sm.Connection, args: argparse.Namespace, endpoint: str) -> None:
    if args.keep_endpoint:
        print(f"  kept endpoint {endpoint}; delete it with `dogclf sagemaker delete-endpoint {endpoint}`")
        return
    for item in sm.delete_endpoint(conn, endpoint):
        print(f"  deleted {item}")


def serve_and_query(conn: sm.Connection, args: argparse.Namespace, outputs: sm.TrainingOutputs, data: Path) -> None:
    """Steps 6-8: once created, the endpoint is deleted even when waiting or querying fails."""
    step("6. deploy")
    endpoint = deploy(conn, args, outputs)
    try:
        wait_in_service(conn, args, endpoint)
        step("7. query the endpoint")
        query(conn, endpoint, pick_image(args, data), outputs)
    finally:
        step("8. delete the endpoint")
        delete(conn, args, endpoint)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        conn = sm.connect(args.bucket, args.region, args.endpoint_url, args.prefix)
        print(f"S3: {conn.s3_uri()}  region: {conn.region}  endpoint URL: {args.endpoint_url or 'AWS default'}")
        cfg = dogclf.build_config(overrides={"model.arch": args.arch, "optim.epochs": args.epochs})
        args.output.mkdir(parents=True, exist_ok=True)
        step("1. upload the data")
        data = local_data(args)
        data_uri = upload(conn, data)
        step("2-3. tune, then read the best hyperparameters")
        cfg = tune(conn, args, cfg, data_uri)
        step("4. train, with the rules and the profiler inside the job")
        outputs = train(conn, args, cfg, data_uri)
        step("5. rule verdicts and reports")
        reports(conn, args, outputs)
        serve_and_query(conn, args, outputs, data)
    except DogclfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\ndone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
