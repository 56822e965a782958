"""SageMaker Python SDK 3.x line: sagemaker-train's `ModelTrainer` and sagemaker-core behind dogclf's `SdkLine`.

3.x runs a script through its own driver (`/bin/bash sm_drivers/sm_train.sh`), with the code and the drivers
as two extra input channels (`code`, `sm_drivers`), and `Torchrun` as the distributed launcher. It has no
Debugger or Profiler options: dogclf refuses `sagemaker_debugger` under 3.x (see estimators.make_estimator).
Models and endpoints are created through the sagemaker-core Session's client (ModelBuilder brings its own serving
setup, and the resources' create() re-reads each one and rejects answers without every optional field).
ModelTrainer checks the role with IAM SimulatePrincipalPolicy unless SAGEMAKER_VALIDATE_ROLE is false.

Tuning jobs go through sagemaker-core's `HyperParameterTuningJob.create`. A tuning job's trials cannot name a
container entry point, so they run as 2.x's framework estimator runs them: the PyTorch training image's toolkit
reads `sagemaker_program` and `sagemaker_submit_directory` (sourcedir.tar.gz, packed and uploaded by the same
sagemaker-core `tar_and_upload_dir` that 2.x uses, to the same key). sagemaker-train's HyperparameterTuner is not
used: it drops the warm pool, sends categorical values un-encoded and packs the code its own way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dogclf.errors import ConfigError
from dogclf.sagemaker.specs import EndpointSpec, ServingSpec, TrainingSpec, TransformSpec, TuningSpec
from dogclf.sagemaker.staging import CODE_DIR

CPU_INSTANCE = "ml.m5.large"  # any CPU instance: picks the CPU inference image for serverless endpoints
VOLUME_GB = 30  # each trial's storage volume, as 2.x sends it


@dataclass(frozen=True)
class Sdk3Tuning:
    """A tuning job under 3.x, not yet started: the session and the specs its request is built from."""

    session: Any
    training: TrainingSpec
    tuning: TuningSpec


class Sdk3Line:
    """sagemaker 3.x: `sagemaker.core` Session and image URIs, `sagemaker.train.ModelTrainer`."""

    major = 3
    operations = frozenset({"train", "tune", "deploy", "batch_transform", "predictor"})

    def job_failures(self) -> tuple[type[BaseException], ...]:
        """sagemaker-core's `WaiterError`s: a waited job ended Failed or Stopped, or the wait timed out."""
        from sagemaker.core.utils.exceptions import WaiterError

        return (WaiterError,)

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

    def tuner(self, trainer: Any, training: TrainingSpec, tuning: TuningSpec) -> Sdk3Tuning:
        """The tuning job's parts: the ModelTrainer's session and the specs (the request is built on `tune`)."""
        return Sdk3Tuning(trainer.sagemaker_session, training, tuning)

    def tune(self, tuner: Sdk3Tuning, channels: dict[str, str], job_name: str, wait: bool) -> str:
        """sagemaker-core's `HyperParameterTuningJob.create` (the code uploaded first); with wait, its `wait()`."""
        from sagemaker.core.resources import HyperParameterTuningJob
        from sagemaker.core.shapes import HyperParameterTuningJobWarmStartConfig, ParentHyperParameterTuningJob, Tag

        warm = None
        if tuner.tuning.warm_start_parents:
            parents = [
                ParentHyperParameterTuningJob(hyper_parameter_tuning_job_name=p)
                for p in tuner.tuning.warm_start_parents
            ]
            warm = HyperParameterTuningJobWarmStartConfig(
                parent_hyper_parameter_tuning_jobs=parents, warm_start_type="IdenticalDataAndAlgorithm"
            )
        job = HyperParameterTuningJob.create(
            session=tuner.session.boto_session,
            region=tuner.session.boto_region_name,
            hyper_parameter_tuning_job_name=job_name,
            hyper_parameter_tuning_job_config=_tuning_config(tuner.tuning),
            training_job_definition=_trial_definition(tuner, channels, job_name),
            warm_start_config=warm,
            tags=[Tag(key=k, value=v) for k, v in tuner.training.tags.items()] or None,
        )
        if wait:
            job.wait()
        return job_name

    def _model_data(self, spec: ServingSpec, session: Any) -> str:
        """spec.model_data, or its repack with spec.source_dir as code/ at CODE_LOCATION/NAME/model.tar.gz (as 2.x)."""
        if spec.source_dir is None:
            return spec.model_data
        from sagemaker.core.common_utils import repack_model

        repacked = f"{spec.code_location.rstrip('/')}/{spec.name}/model.tar.gz"
        repack_model(spec.entry_script, str(spec.source_dir), [], spec.model_data, repacked, session)
        return repacked

    def _container(self, spec: ServingSpec, session: Any, instance_type: str) -> dict[str, Any]:
        """The container: the user's image as is, or the PyTorch image with its serving toolkit's settings."""
        model_data = self._model_data(spec, session)
        if spec.image:
            return {"Image": spec.image, "ModelDataUrl": model_data, "Environment": dict(spec.environment)}
        region = session.boto_region_name
        toolkit = {
            "SAGEMAKER_PROGRAM": spec.entry_script,
            "SAGEMAKER_SUBMIT_DIRECTORY": CODE_DIR,
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_REGION": region,
        }
        image = self.image_uri(region, spec.framework_version, spec.py_version, instance_type, "inference")
        return {"Image": image, "ModelDataUrl": model_data, "Environment": {**toolkit, **spec.environment}}

    def _create_model(self, spec: ServingSpec, session: Any, instance_type: str) -> None:
        """CreateModel of spec (the image for instance_type) through the Session's client."""
        session.sagemaker_client.create_model(
            ModelName=spec.name,
            ExecutionRoleArn=spec.role,
            PrimaryContainer=self._container(spec, session, instance_type),
            **({"Tags": _tags(spec)} if spec.tags else {}),
        )

    def deploy(self, model: ServingSpec, endpoint: EndpointSpec, session: Any) -> str:
        """CreateModel, CreateEndpointConfig, CreateEndpoint (no wait) through the sagemaker-core Session's client.

        sagemaker-core's resources re-read each one after creating it and reject answers without every field.
        """
        serverless = endpoint.serverless_memory_mb is not None
        # Serverless endpoints run on CPU: the image is the CPU one, as 2.x picks it.
        container = self._container(model, session, CPU_INSTANCE if serverless else endpoint.instance_type)
        tags = [{"Key": k, "Value": v} for k, v in model.tags.items()]
        client = session.sagemaker_client
        client.create_model(
            ModelName=model.name,
            ExecutionRoleArn=model.role,
            PrimaryContainer=container,
            **({"Tags": tags} if tags else {}),
        )
        variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": model.name, "InitialVariantWeight": 1}
        if serverless:
            variant["ServerlessConfig"] = {
                "MemorySizeInMB": endpoint.serverless_memory_mb,
                "MaxConcurrency": endpoint.serverless_max_concurrency,
            }
        else:
            variant |= {"InitialInstanceCount": endpoint.instance_count, "InstanceType": endpoint.instance_type}
        client.create_endpoint_config(
            EndpointConfigName=model.name, ProductionVariants=[variant], **({"Tags": tags} if tags else {})
        )
        client.create_endpoint(EndpointName=model.name, EndpointConfigName=model.name, Tags=tags)
        return model.name

    def transform(self, model: ServingSpec, job: TransformSpec, session: Any) -> str:
        """CreateModel and CreateTransformJob through the sagemaker-core Session's client (no wait)."""
        self._create_model(model, session, job.instance_type)
        extra: dict[str, Any] = {"Tags": _tags(model)} if model.tags else {}
        if job.max_concurrent_transforms is not None:
            extra["MaxConcurrentTransforms"] = job.max_concurrent_transforms
        session.sagemaker_client.create_transform_job(
            TransformJobName=job.name,
            ModelName=model.name,
            BatchStrategy="SingleRecord",
            TransformInput={
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": job.input_uri}},
                "ContentType": job.content_type,
                "SplitType": "None",
            },
            TransformOutput={"S3OutputPath": job.output_uri, "Accept": job.accept},
            TransformResources={"InstanceType": job.instance_type, "InstanceCount": job.instance_count},
            **extra,
        )
        return job.name

    def predictor(self, endpoint_name: str, session: Any, serializer: Any, deserializer: Any) -> Any:
        """A `RuntimePredictor`: InvokeEndpoint through the session's sagemaker-runtime client (or boto3's default)."""
        import boto3

        client = session.sagemaker_runtime_client if session is not None else boto3.client("sagemaker-runtime")
        return RuntimePredictor(endpoint_name, client, serializer, deserializer)


def _tuning_config(tuning: TuningSpec) -> Any:
    """HyperParameterTuningJobConfig: strategy (and Hyperband's resources), objective, limits, ranges, stopping."""
    from sagemaker.core.shapes import (
        CategoricalParameterRange,
        ContinuousParameterRange,
        HyperbandStrategyConfig,
        HyperParameterTuningJobConfig,
        HyperParameterTuningJobObjective,
        HyperParameterTuningJobStrategyConfig,
        IntegerParameterRange,
        ParameterRanges,
        ResourceLimits,
    )

    def ranges(kind: str, shape: Any) -> list[Any]:
        picked = [r for r in tuning.ranges if r.kind == kind]
        return [
            shape(name=r.name, min_value=r.min_value, max_value=r.max_value, scaling_type=r.scaling) for r in picked
        ]

    # JSON-encoded like every static hyperparameter (as 2.x encodes them for framework estimators)
    categorical = [
        CategoricalParameterRange(name=r.name, values=[json.dumps(v) for v in r.values])
        for r in tuning.ranges
        if r.kind == "Categorical"
    ]
    strategy_config = None
    if tuning.hyperband_resources:
        low, high = tuning.hyperband_resources
        hyperband = HyperbandStrategyConfig(min_resource=low, max_resource=high)
        strategy_config = HyperParameterTuningJobStrategyConfig(hyperband_strategy_config=hyperband)
    return HyperParameterTuningJobConfig(
        strategy=tuning.strategy,
        strategy_config=strategy_config,
        hyper_parameter_tuning_job_objective=HyperParameterTuningJobObjective(
            type=tuning.objective_type, metric_name=tuning.objective
        ),
        resource_limits=ResourceLimits(
            max_number_of_training_jobs=tuning.max_jobs,
            max_parallel_training_jobs=tuning.max_parallel_jobs,
            max_runtime_in_seconds=tuning.max_runtime_s,
        ),
        parameter_ranges=ParameterRanges(
            continuous_parameter_ranges=ranges("Continuous", ContinuousParameterRange),
            integer_parameter_ranges=ranges("Integer", IntegerParameterRange),
            categorical_parameter_ranges=categorical,
        ),
        training_job_early_stopping_type=tuning.early_stopping,
    )


def _source_dir_uri(session: Any, spec: TrainingSpec, job_name: str) -> str:
    """spec.source_dir packed and uploaded as CODE_LOCATION/JOB/source/sourcedir.tar.gz, as 2.x's estimator does."""
    from sagemaker.core.fw_utils import tar_and_upload_dir

    bucket, _, prefix = spec.code_location.removeprefix("s3://").partition("/")
    key_prefix = "/".join(part for part in (prefix.strip("/"), job_name, "source") if part)
    uploaded = tar_and_upload_dir(
        session.boto_session,
        bucket,
        key_prefix,
        spec.entry_script,
        str(spec.source_dir),
        s3_resource=session.s3_resource,
        settings=session.settings,
    )
    return str(uploaded.s3_prefix)


def _static_hyperparameters(tuner: Sdk3Tuning, job_name: str) -> dict[str, str]:
    """The script's untuned hyperparameters and the training toolkit's (program, code, region, launcher), JSON."""
    spec = tuner.training
    toolkit: dict[str, Any] = {
        "sagemaker_program": spec.entry_script,
        "sagemaker_submit_directory": _source_dir_uri(tuner.session, spec, job_name),
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": job_name,
        "sagemaker_region": tuner.session.boto_region_name,
    }
    if spec.distributed:  # the toolkit runs torchrun on every instance
        toolkit |= {"sagemaker_torch_distributed_enabled": True, "sagemaker_instance_type": spec.instance_type}
    tuned = {r.name for r in tuner.tuning.ranges}
    script = {k: v for k, v in spec.hyperparameters.items() if k not in tuned}
    return {k: json.dumps(v) for k, v in {**script, **toolkit}.items()}


def _trial_definition(tuner: Sdk3Tuning, channels: dict[str, str], job_name: str) -> Any:
    """HyperParameterTrainingJobDefinition: the trials' image, instances, warm pool, spot, channels and output."""
    from sagemaker.core.shapes import (
        Channel,
        CheckpointConfig,
        DataSource,
        HyperParameterAlgorithmSpecification,
        HyperParameterTrainingJobDefinition,
        MetricDefinition,
        OutputDataConfig,
        ResourceConfig,
        S3DataSource,
        StoppingCondition,
    )

    spec = tuner.training
    inputs = [
        Channel(
            channel_name=name,
            data_source=DataSource(
                s3_data_source=S3DataSource(
                    s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type="FullyReplicated"
                )
            ),
        )
        for name, uri in channels.items()
    ]
    metrics = [MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in spec.metric_definitions]
    checkpoint = CheckpointConfig(s3_uri=spec.checkpoint_s3_uri) if spec.checkpoint_s3_uri else None
    return HyperParameterTrainingJobDefinition(
        static_hyper_parameters=_static_hyperparameters(tuner, job_name),
        algorithm_specification=HyperParameterAlgorithmSpecification(
            training_image=spec.image, training_input_mode="File", metric_definitions=metrics
        ),
        role_arn=spec.role,
        input_data_config=inputs,
        output_data_config=OutputDataConfig(s3_output_path=spec.output_path),
        resource_config=ResourceConfig(
            instance_type=spec.instance_type,
            instance_count=spec.instance_count,
            volume_size_in_gb=VOLUME_GB,
            keep_alive_period_in_seconds=spec.keep_alive_s,
        ),
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=spec.max_run_s, max_wait_time_in_seconds=spec.max_wait_s
        ),
        enable_managed_spot_training=spec.spot or None,
        checkpoint_config=checkpoint,
        environment=dict(spec.environment) or None,
    )


def _tags(spec: ServingSpec) -> list[dict[str, str]]:
    """The spec's tags as SageMaker takes them."""
    return [{"Key": k, "Value": v} for k, v in spec.tags.items()]


class RuntimePredictor:
    """The predictor-style client under 3.x (which has no Predictor): `predict(data)` with dogclf's codecs."""

    def __init__(self, endpoint_name: str, runtime_client: Any, serializer: Any, deserializer: Any) -> None:
        """Invoke endpoint_name with runtime_client, encoding with serializer and decoding with deserializer."""
        self.endpoint_name = endpoint_name
        self.serializer = serializer
        self.deserializer = deserializer
        self._client = runtime_client

    def predict(self, data: Any, custom_attributes: str | None = None) -> Any:
        """InvokeEndpoint with the serialized data; the deserialized answer."""
        extra = {"CustomAttributes": custom_attributes} if custom_attributes else {}
        answer = self._client.invoke_endpoint(
            EndpointName=self.endpoint_name,
            Body=self.serializer.serialize(data),
            ContentType=self.serializer.CONTENT_TYPE,
            Accept=self.deserializer.ACCEPT[0],
            **extra,
        )
        return self.deserializer.deserialize(answer["Body"], answer.get("ContentType", ""))
