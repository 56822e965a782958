"""The training entrypoint contract: SM_* environment + hyperparameter args -> RunConfig -> train().

Where a run's files go inside the container:
- RUN (config-free outputs: metrics.jsonl, summary.json, plots/, debug/, profile/, and with the debug hook or
  profiler on, rule-verdicts.json and the HTML reports: see dogclf.sagemaker.insight) -> SM_OUTPUT_DATA_DIR,
  which SageMaker uploads as output.tar.gz;
- the artifact (model.pth + metadata.json) -> SM_MODEL_DIR, uploaded as model.tar.gz for serving; rank 0
  adds code/ (inference.py, a dogclf copy, requirements.txt), so that model.tar.gz deploys without a repack;
- checkpoints and the config that guards resuming -> /opt/ml/checkpoints when it exists (synced with the
  estimator's checkpoint_s3_uri, so a spot restart resumes), else RUN/checkpoints.
Outside SageMaker the same flags take plain paths. Failures, and a stop by a rule of debug.live_stop_on, are
written to /opt/ml/output/failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dogclf.errors import ConfigError, DogclfError
from dogclf.hyperparameters import add_hyperparameter_flags, config_field, decode_value, overrides_from_namespace
from dogclf.sagemaker.environment import SageMakerEnv, split_view
from dogclf.training.rundir import RunPaths
from dogclf.tune.trial import TRIAL_SETTINGS

if TYPE_CHECKING:
    from dogclf.config import RunConfig

log = logging.getLogger("dogclf")
CONFIG_FILE = "dogclf-config.yaml"  # written next to the entry script by jobs.make_estimator


@dataclass(frozen=True)
class ContainerRunPaths(RunPaths):
    """RunPaths with the artifact, the checkpoints (with the config guarding a resume) and TensorBoard relocated."""

    model_dir: Path | None = None
    checkpoint_dir: Path | None = None
    tensorboard_dir: Path | None = None

    @property
    def model(self) -> Path:
        """--model-dir when given (default SM_MODEL_DIR, which SageMaker uploads as model.tar.gz)."""
        return self.model_dir or self.root / "model"

    @property
    def checkpoints(self) -> Path:
        """--checkpoint-dir when given: SageMaker syncs it with checkpoint_s3_uri, so a resubmitted job resumes."""
        return self.checkpoint_dir or self.root / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        """/opt/ml/output/tensorboard inside a training job (the TensorBoardOutputConfig path synced to S3)."""
        return self.tensorboard_dir or self.root / "tensorboard"

    @property
    def config(self) -> Path:
        """Kept with the checkpoints, so a resumed job checks its config against the one they came from."""
        return self.checkpoints / "config.yaml"


def build_parser(env: SageMakerEnv, mode: str, script_dir: Path | None = None) -> argparse.ArgumentParser:
    """Flags of the entry scripts; every default comes from the SageMaker environment when present."""
    p = argparse.ArgumentParser(
        prog=f"{mode}.py", description=f"dogclf {mode} entrypoint (SageMaker training container or local)."
    )
    p.add_argument("--data", default=None, help="dataset root (default: built from the SM_CHANNEL_* folders)")
    p.add_argument(
        "--output-data-dir",
        default=env.output_data_dir,
        type=Path,
        help="run folder for metrics, plots and reports (default: SM_OUTPUT_DATA_DIR)",
    )
    p.add_argument(
        "--model-dir",
        default=env.model_dir,
        type=Path,
        help="artifact folder (default: SM_MODEL_DIR, else OUTPUT_DATA_DIR/model)",
    )
    p.add_argument(
        "--checkpoint-dir",
        default=env.checkpoint_dir,
        type=Path,
        help="checkpoint folder (default: /opt/ml/checkpoints when it exists)",
    )
    shipped = script_dir / CONFIG_FILE if script_dir else None
    p.add_argument(
        "--config",
        type=Path,
        default=shipped if shipped and shipped.is_file() else None,
        help=f"config file (default: {CONFIG_FILE} next to the script, shipped by make_estimator)",
    )
    add_hyperparameter_flags(p)
    return p


def _hyperparameter_overrides(env: SageMakerEnv) -> dict[str, Any]:
    """hyperparameters.json as dotted overrides; an unknown name is an error listing the valid ones."""
    return {config_field(name): decode_value(value) for name, value in env.hyperparameters().items()}


def resolve(
    argv: Sequence[str] | None, mode: str, env: SageMakerEnv, script_dir: Path | None = None
) -> tuple[RunConfig, ContainerRunPaths]:
    """(RunConfig, run paths) from defaults < config file < hyperparameters.json < CLI args."""
    from dogclf.config import build_config

    args = build_parser(env, mode, script_dir).parse_args(argv)
    if args.output_data_dir is None:
        raise ConfigError("--output-data-dir is required outside SageMaker (SM_OUTPUT_DATA_DIR is not set)")
    splits = ("train", "valid") if mode == "hpo" else ("train", "valid", "test")  # tuning never sees test
    data = split_view(Path(args.data), set(splits)) if args.data else env.dataset_root(splits)
    if data is None:
        raise ConfigError("no dataset: pass --data DIR or run with SM_CHANNEL_* channels")
    overrides = {**_hyperparameter_overrides(env), **overrides_from_namespace(args), "data.root": str(data)}
    if mode == "hpo":
        overrides.update(TRIAL_SETTINGS)
    cfg = build_config(args.config, overrides)
    paths = ContainerRunPaths(Path(args.output_data_dir), args.model_dir, args.checkpoint_dir, env.tensorboard_dir)
    return cfg, paths


def main(argv: Sequence[str] | None = None, mode: str = "train", script_dir: Path | None = None) -> int:
    """Run one training job (mode 'train') or tuning trial (mode 'hpo'); the exit code for sys.exit."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    env = SageMakerEnv.from_environ()
    try:
        from dogclf.training import distributed, train

        cfg, paths = resolve(argv, mode, env, script_dir)
        result = train(cfg, paths.root, resume=True, paths=paths, evaluate_test=mode != "hpo")
        stopped = _rule_verdicts(cfg, paths.root) if mode == "train" and distributed.info_from_env().is_main else None
    except DogclfError as exc:
        env.write_failure(f"{type(exc).__name__}: {exc}")
        print(f"dogclf: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        env.write_failure(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        raise
    if result.artifact_dir.exists():
        if mode == "train" and env.in_container and distributed.info_from_env().is_main:
            add_serving_code(result.artifact_dir, script_dir)
        log.info("model: %s", result.artifact_dir)
    if stopped:
        env.write_failure(stopped)
        print(f"dogclf: error: {stopped}", file=sys.stderr)
        return 1
    return 0


def _rule_verdicts(cfg: RunConfig, run_root: Path) -> str | None:
    """With the debug hook or profiler on: final rules, reports and verdict metric lines; the rule stop, if any."""
    if not (cfg.debug.enabled or cfg.debug.live_rules or cfg.profile.enabled):
        return None
    from dogclf.sagemaker.insight import finish

    return finish(cfg, run_root).stop_reason()


def add_serving_code(model_dir: Path, script_dir: Path | None = None) -> Path:
    """Write model_dir/code (inference.py, a dogclf copy, requirements.txt): the job's model.tar.gz serves as is.

    requirements.txt is the serving list shipped next to the entry script (the container has no dogclf metadata),
    which leaves out the job's training-only extras such as smdebug.
    """
    from dogclf.sagemaker.bundle import REQUIREMENTS_FILE, SERVING_REQUIREMENTS_FILE, write_code

    shipped = [script_dir / name for name in (SERVING_REQUIREMENTS_FILE, REQUIREMENTS_FILE)] if script_dir else []
    found = next((p for p in shipped if p.is_file()), None)
    if found is None:
        log.warning("no requirements shipped next to the entry script: the model's code/requirements.txt is empty")
    text = found.read_text(encoding="utf-8") if found else ""
    return write_code(model_dir / "code", ["inference.py"], requirements_text=text)
