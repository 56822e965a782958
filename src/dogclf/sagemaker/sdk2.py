"""SageMaker Python SDK 2.x line: the PyTorch `Estimator` family behind dogclf's `SdkLine`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from dogclf.errors import ConfigError
from dogclf.sagemaker.specs import EndpointSpec, ServingSpec, TrainingSpec, TransformSpec, TuningSpec


def _sdk_config() -> dict[str, Any]:
    """The user's SDK config with telemetry opted out."""
    from sagemaker.config import load_sagemaker_config

    sdk_config = load_sagemaker_config()
    sdk_config.setdefault("SchemaVersion", "1.0")
    modules = sdk_config.setdefault("SageMaker", {}).setdefault("PythonSDK", {}).setdefault("Modules", {})
    modules["TelemetryOptOut"] = True
    return sdk_config


@contextlib.contextmanager
def warm_pool(client: Any, keep_alive_s: int | None) -> Iterator[None]:
    """Send the trials' KeepAlivePeriodInSeconds, which SDK 2.x's tuner drops, in their ResourceConfig."""
    if keep_alive_s is None:
        yield
        return

    def add_keep_alive(params: dict[str, Any], **_: Any) -> None:
        definition = params.get("TrainingJobDefinition") or {}
        resources = definition.pop("HyperParameterTuningResourceConfig", None)
        if resources is not None:
            fields = ("InstanceType", "InstanceCount", "VolumeSizeInGB", "VolumeKmsKeyId")
            kept = {k: v for k, v in resources.items() if k in fields}
            definition["ResourceConfig"] = {**kept, "KeepAlivePeriodInSeconds": keep_alive_s}

    event, unique_id = "before-parameter-build.sagemaker.CreateHyperParameterTuningJob", "dogclf-warm-pool"
    client.meta.events.register(event, add_keep_alive, unique_id=unique_id)
    try:
        yield
    finally:
        client.meta.events.unregister(event, unique_id=unique_id)


class Sdk2Line:
    """sagemaker 2.x: `sagemaker.Session`, `sagemaker.pytorch.PyTorch`."""

    major = 2
    operations = frozenset({"train", "tune", "deploy", "batch_transform", "predictor"})

    def job_failures(self) -> tuple[type[BaseException], ...]:
        """2.x's `UnexpectedStatusException` (a waited job ended Failed or Stopped)."""
        from sagemaker.exceptions import UnexpectedStatusException

        return (UnexpectedStatusException,)

    def session(self, boto_session: Any, endpoint_url: str | None, bucket: str | None) -> Any:
        """A `sagemaker.Session` on boto_session with telemetry opted out."""
        import sagemaker

        return sagemaker.Session(
            boto_session=boto_session,
            sagemaker_client=boto_session.client("sagemaker", endpoint_url=endpoint_url),
            sagemaker_runtime_client=boto_session.client("sagemaker-runtime", endpoint_url=endpoint_url),
            default_bucket=bucket or None,
            sagemaker_config=_sdk_config(),
        )

    def image_uri(self, region: str, version: str, py_version: str, instance_type: str, scope: str) -> str:
        """`sagemaker.image_uris.retrieve` for PyTorch."""
        from sagemaker import image_uris

        return image_uris.retrieve(
            "pytorch", region, version=version, py_version=py_version, instance_type=instance_type, image_scope=scope
        )

    def trainer(self, spec: TrainingSpec, session: Any) -> Any:
        """A PyTorch estimator (torch_distributed for a distributed spec)."""
        from sagemaker.debugger import TensorBoardOutputConfig
        from sagemaker.pytorch import PyTorch

        tensorboard = None
        if spec.tensorboard_s3_uri:
            tensorboard = TensorBoardOutputConfig(
                s3_output_path=spec.tensorboard_s3_uri, container_local_output_path=spec.tensorboard_local_path
            )
        try:
            return PyTorch(
                entry_point=spec.entry_script,
                source_dir=str(spec.source_dir),
                hyperparameters=dict(spec.hyperparameters),
                metric_definitions=list(spec.metric_definitions),
                role=spec.role,
                image_uri=spec.image,
                framework_version=spec.framework_version,
                py_version=spec.py_version,
                instance_type=spec.instance_type,
                instance_count=spec.instance_count,
                checkpoint_s3_uri=spec.checkpoint_s3_uri,
                use_spot_instances=spec.spot,
                max_run=spec.max_run_s,
                max_wait=spec.max_wait_s,
                keep_alive_period_in_seconds=spec.keep_alive_s,
                distribution={"torch_distributed": {"enabled": True}} if spec.distributed else None,
                output_path=spec.output_path,
                code_location=spec.code_location,
                base_job_name=spec.base_job_name,
                environment=dict(spec.environment) or None,
                tags=[{"Key": k, "Value": v} for k, v in spec.tags.items()],
                tensorboard_output_config=tensorboard,
                sagemaker_session=session,
                **{"disable_profiler": True, "debugger_hook_config": False, **spec.service_monitoring},
            )
        except ValueError as exc:
            raise ConfigError(f"SageMaker SDK rejected the estimator: {exc}") from None

    def train(self, trainer: Any, channels: dict[str, str], job_name: str, wait: bool) -> str:
        """`estimator.fit` (logs streamed while waiting)."""
        trainer.fit(channels, job_name=job_name, wait=wait, logs="All" if wait else "None")
        return str(trainer.latest_training_job.name)

    def tuner(self, trainer: Any, training: TrainingSpec, tuning: TuningSpec) -> Any:
        """A HyperparameterTuner over the estimator: ranges, objective, strategy, limits, warm start."""
        from sagemaker.tuner import (
            CategoricalParameter,
            ContinuousParameter,
            HyperbandStrategyConfig,
            HyperparameterTuner,
            IntegerParameter,
            StrategyConfig,
            WarmStartConfig,
            WarmStartTypes,
        )

        kinds = {"Continuous": ContinuousParameter, "Integer": IntegerParameter}
        ranges = {
            r.name: CategoricalParameter(list(r.values))
            if r.kind == "Categorical"
            else kinds[r.kind](r.min_value, r.max_value, scaling_type=r.scaling)
            for r in tuning.ranges
        }
        strategy_config = None
        if tuning.hyperband_resources:
            low, high = tuning.hyperband_resources
            strategy_config = StrategyConfig(HyperbandStrategyConfig(min_resource=low, max_resource=high))
        warm = None
        if tuning.warm_start_parents:
            parents = set(tuning.warm_start_parents)
            warm = WarmStartConfig(WarmStartTypes.IDENTICAL_DATA_AND_ALGORITHM, parents=parents)
        try:
            return HyperparameterTuner(
                trainer,
                tuning.objective,
                ranges,
                metric_definitions=list(training.metric_definitions),
                strategy=tuning.strategy,
                objective_type=tuning.objective_type,
                max_jobs=tuning.max_jobs,
                max_parallel_jobs=tuning.max_parallel_jobs,
                max_runtime_in_seconds=tuning.max_runtime_s,
                early_stopping_type=tuning.early_stopping,
                strategy_config=strategy_config,
                warm_start_config=warm,
                base_tuning_job_name=tuning.base_name,
            )
        except ValueError as exc:
            raise ConfigError(f"SageMaker SDK rejected the tuner: {exc}") from None

    def tune(self, tuner: Any, channels: dict[str, str], job_name: str, wait: bool) -> str:
        """`tuner.fit` (the trials' warm pool added to the request), then with wait `tuner.wait`."""
        with warm_pool(tuner.sagemaker_session.sagemaker_client, tuner.estimator.keep_alive_period_in_seconds):
            tuner.fit(channels, job_name=job_name, wait=False)
        if wait:
            tuner.wait()
        return str(tuner.latest_tuning_job.name)

    def model(self, spec: ServingSpec, session: Any) -> Any:
        """The PyTorchModel of dogclf's serving code (repacked from spec.source_dir), or a Model of spec.image."""
        if spec.image:
            from sagemaker.model import Model
            from sagemaker.predictor import Predictor

            return Model(
                image_uri=spec.image,
                model_data=spec.model_data,
                role=spec.role,
                sagemaker_session=session,
                name=spec.name,
                env=dict(spec.environment),
                predictor_cls=Predictor,
            )
        from sagemaker.pytorch import PyTorchModel

        code = {"entry_point": spec.entry_script, "source_dir": str(spec.source_dir)} if spec.source_dir else {}
        return PyTorchModel(
            model_data=spec.model_data,
            role=spec.role,
            framework_version=spec.framework_version,
            py_version=spec.py_version,
            sagemaker_session=session,
            code_location=spec.code_location,
            name=spec.name,
            env=dict(spec.environment),
            **code,
        )

    def deploy(self, model: ServingSpec, endpoint: EndpointSpec, session: Any) -> Any:
        """`Model.deploy` (no wait): instances, or a ServerlessInferenceConfig; the endpoint's name."""
        from sagemaker.serverless import ServerlessInferenceConfig

        serverless = None
        if endpoint.serverless_memory_mb is not None:
            serverless = ServerlessInferenceConfig(
                memory_size_in_mb=endpoint.serverless_memory_mb, max_concurrency=endpoint.serverless_max_concurrency
            )
        self.model(model, session).deploy(
            initial_instance_count=None if serverless else endpoint.instance_count,
            instance_type=None if serverless else endpoint.instance_type,
            serverless_inference_config=serverless,
            endpoint_name=model.name,
            wait=False,
            tags=[{"Key": k, "Value": v} for k, v in model.tags.items()] or None,
        )
        return model.name

    def transform(self, model: ServingSpec, job: TransformSpec, session: Any) -> str:
        """`Model.transformer(...).transform(...)` (no wait)."""
        transformer = self.model(model, session).transformer(
            instance_count=job.instance_count,
            instance_type=job.instance_type,
            strategy="SingleRecord",
            output_path=job.output_uri,
            accept=job.accept,
            max_concurrent_transforms=job.max_concurrent_transforms,
            tags=[{"Key": k, "Value": v} for k, v in model.tags.items()] or None,
        )
        transformer.transform(
            data=job.input_uri, content_type=job.content_type, split_type=None, job_name=job.name, wait=False
        )
        return job.name

    def predictor(self, endpoint_name: str, session: Any, serializer: Any, deserializer: Any) -> Any:
        """A `sagemaker.predictor.Predictor` with the given codecs."""
        from sagemaker.predictor import Predictor

        return Predictor(endpoint_name, sagemaker_session=session, serializer=serializer, deserializer=deserializer)
