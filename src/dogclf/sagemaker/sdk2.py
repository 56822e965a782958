"""SageMaker Python SDK 2.x line: the PyTorch `Estimator` family behind dogclf's `SdkLine`."""

from __future__ import annotations

from typing import Any

from dogclf.errors import ConfigError
from dogclf.sagemaker.specs import EndpointSpec, ServingSpec, TrainingSpec, TransformSpec


def _sdk_config() -> dict[str, Any]:
    """The user's SDK config with telemetry opted out."""
    from sagemaker.config import load_sagemaker_config

    sdk_config = load_sagemaker_config()
    sdk_config.setdefault("SchemaVersion", "1.0")
    modules = sdk_config.setdefault("SageMaker", {}).setdefault("PythonSDK", {}).setdefault("Modules", {})
    modules["TelemetryOptOut"] = True
    return sdk_config


class Sdk2Line:
    """sagemaker 2.x: `sagemaker.Session`, `sagemaker.pytorch.PyTorch`."""

    major = 2
    operations = frozenset({"train", "tune", "deploy", "batch_transform", "predictor"})

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
