"""SageMaker Python SDK 3.x line: sagemaker-train's `ModelTrainer` and sagemaker-core behind dogclf's `SdkLine`.

3.x runs a script through its own driver (`/bin/bash sm_drivers/sm_train.sh`), with the code and the drivers
as two extra input channels (`code`, `sm_drivers`), and `Torchrun` as the distributed launcher. It has no
Debugger or Profiler options: dogclf refuses `sagemaker_debugger` under 3.x (see estimators.make_estimator).
ModelTrainer checks the role with IAM SimulatePrincipalPolicy unless SAGEMAKER_VALIDATE_ROLE is false.
"""

from __future__ import annotations

import json
from typing import Any

from dogclf.errors import ConfigError
from dogclf.sagemaker.specs import TrainingSpec


class Sdk3Line:
    """sagemaker 3.x: `sagemaker.core` Session and image URIs, `sagemaker.train.ModelTrainer`."""

    major = 3
    operations = frozenset({"train"})

    def session(self, boto_session: Any, endpoint_url: str | None, bucket: str | None) -> Any:
        """A sagemaker-core Session on boto_session with telemetry opted out."""
        from sagemaker.core.config.config import load_sagemaker_config
        from sagemaker.core.helper.session_helper import Session

        sdk_config = load_sagemaker_config()
        sdk_config.setdefault("SchemaVersion", "1.0")
        modules = sdk_config.setdefault("SageMaker", {}).setdefault("PythonSDK", {}).setdefault("Modules", {})
        modules["TelemetryOptOut"] = True
        return Session(
            boto_session=boto_session,
            sagemaker_client=boto_session.client("sagemaker", endpoint_url=endpoint_url),
            sagemaker_runtime_client=boto_session.client("sagemaker-runtime", endpoint_url=endpoint_url),
            default_bucket=bucket or None,
            sagemaker_config=sdk_config,
        )

    def image_uri(self, region: str, version: str, py_version: str, instance_type: str, scope: str) -> str:
        """`sagemaker.core.image_uris.retrieve` for PyTorch."""
        from sagemaker.core import image_uris

        return image_uris.retrieve(
            "pytorch", region, version=version, py_version=py_version, instance_type=instance_type, image_scope=scope
        )

    def trainer(self, spec: TrainingSpec, session: Any) -> Any:
        """A ModelTrainer with SourceCode, Compute, checkpoint, TensorBoard, metrics and Torchrun when distributed."""
        from sagemaker.core.training.configs import (
            CheckpointConfig,
            Compute,
            MetricDefinition,
            OutputDataConfig,
            SourceCode,
            StoppingCondition,
            Tag,
            TensorBoardOutputConfig,
        )
        from sagemaker.train import ModelTrainer
        from sagemaker.train.distributed import Torchrun

        if spec.service_monitoring:
            raise ConfigError("the SageMaker Debugger/Profiler services need SageMaker SDK 2.x (3.x has no options)")
        compute = Compute(
            instance_type=spec.instance_type,
            instance_count=spec.instance_count,
            enable_managed_spot_training=spec.spot,
            keep_alive_period_in_seconds=spec.keep_alive_s,
        )
        stopping = StoppingCondition(max_runtime_in_seconds=spec.max_run_s, max_wait_time_in_seconds=spec.max_wait_s)
        try:
            trainer = ModelTrainer(
                sagemaker_session=session,
                role=spec.role,
                base_job_name=spec.base_job_name,
                training_image=spec.image,
                source_code=SourceCode(source_dir=str(spec.source_dir), entry_script=spec.entry_script),
                distributed=Torchrun() if spec.distributed else None,
                compute=compute,
                stopping_condition=stopping,
                output_data_config=OutputDataConfig(s3_output_path=spec.output_path),
                input_s3_key_prefix=spec.code_location.removeprefix("s3://").partition("/")[2] or None,
                # JSON-encoded like 2.x's framework estimators: both drivers and dogclf's reader decode once.
                hyperparameters={k: json.dumps(v) for k, v in spec.hyperparameters.items()},
                environment=dict(spec.environment),
                tags=[Tag(key=k, value=v) for k, v in spec.tags.items()],
            )
        except ValueError as exc:
            raise ConfigError(f"SageMaker SDK rejected the training job: {' '.join(str(exc).split())}") from None
        trainer = trainer.with_metric_definitions(
            [MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in spec.metric_definitions]
        )
        if spec.checkpoint_s3_uri:
            trainer = trainer.with_checkpoint_config(CheckpointConfig(s3_uri=spec.checkpoint_s3_uri))
        if spec.tensorboard_s3_uri:
            trainer = trainer.with_tensorboard_output_config(
                TensorBoardOutputConfig(s3_output_path=spec.tensorboard_s3_uri, local_path=spec.tensorboard_local_path)
            )
        return trainer

    def train(self, trainer: Any, channels: dict[str, str], job_name: str, wait: bool) -> str:
        """`ModelTrainer.train` on the S3 channels, under the given job name."""
        from sagemaker.core.resources import TrainingJob
        from sagemaker.core.training.configs import InputData

        inputs = [InputData(channel_name=name, data_source=uri) for name, uri in channels.items()]
        # ModelTrainer.train always names the job base-<timestamp>; the request is built as train() builds it
        # (code and driver channels uploaded) and sent under dogclf's name through sagemaker-core's resource.
        request = trainer._create_training_job_args(input_data_config=inputs)
        request["training_job_name"] = job_name
        job = TrainingJob.create(session=trainer.sagemaker_session.boto_session, **request)
        if wait:
            job.wait(logs=True)
        return str(job.training_job_name)
