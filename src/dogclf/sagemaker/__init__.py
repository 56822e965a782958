"""SageMaker integration: every SageMaker SDK and boto3 call of dogclf lives in this package.

Modules load on first use and import the SDK and boto3 inside functions, so `import dogclf.sagemaker` is light:
- container side (SDK-free): `environment` (SM_* variables), `training` (what the entry scripts run), `insight`
  (rules, reports and verdict metric lines inside a training job), `bundle` (the code folder shipped with jobs
  and models);
- submitting side: `session` (Connection, default bucket, SageMakerError), `staging` (a job's source dir),
  `debugger` (Debugger/profiler service rule plans), `estimators` (training jobs, submit), `tuners` (tuning jobs
  and search-space ranges), `waiting` (describe, wait, outputs), `best_job` (best_params), `endpoints` (deploy,
  autoscaling, invoke, delete), `batch` (Batch Transform jobs and their results; `batch_output` parses `.out`
  files SDK-free), `registry` (Model Registry packages: register, approve, resolve for serving), `reports`
  (report downloads: the job's own from output.tar.gz, the services' from rule-output), `s3` (folder sync),
  `serializers` (the predictor's client-side codecs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dogclf.lazy import lazy_exports

_EXPORTS = {
    "FRAMEWORK_VERSION": "dogclf.sagemaker.session",
    "PY_VERSION": "dogclf.sagemaker.session",
    "SageMakerError": "dogclf.sagemaker.session",
    "Connection": "dogclf.sagemaker.session",
    "default_bucket_name": "dogclf.sagemaker.session",
    "connect": "dogclf.sagemaker.session",
    "ENTRY_SCRIPTS": "dogclf.sagemaker.staging",
    "CODE_DIR": "dogclf.sagemaker.staging",
    "stage_source_dir": "dogclf.sagemaker.staging",
    "BUILTIN_RULES": "dogclf.sagemaker.debugger",
    "RULE_EVALUATOR_ACCOUNTS": "dogclf.sagemaker.debugger",
    "custom_rule_classes": "dogclf.sagemaker.debugger",
    "rule_signatures": "dogclf.sagemaker.debugger",
    "rules_source": "dogclf.sagemaker.debugger",
    "rule_image": "dogclf.sagemaker.debugger",
    "rule_parameter_strings": "dogclf.sagemaker.debugger",
    "debugger_config": "dogclf.sagemaker.debugger",
    "profiler_config": "dogclf.sagemaker.debugger",
    "EstimatorOptions": "dogclf.sagemaker.estimators",
    "estimator_hyperparameters": "dogclf.sagemaker.estimators",
    "make_estimator": "dogclf.sagemaker.estimators",
    "submit": "dogclf.sagemaker.estimators",
    "SDK_STRATEGIES": "dogclf.sagemaker.tuners",
    "sagemaker_ranges": "dogclf.sagemaker.tuners",
    "make_tuner": "dogclf.sagemaker.tuners",
    "RULE_FINAL": "dogclf.sagemaker.waiting",
    "describe": "dogclf.sagemaker.waiting",
    "wait_for": "dogclf.sagemaker.waiting",
    "rule_statuses": "dogclf.sagemaker.waiting",
    "wait_for_rules": "dogclf.sagemaker.waiting",
    "TrainingOutputs": "dogclf.sagemaker.waiting",
    "training_outputs": "dogclf.sagemaker.waiting",
    "BestParams": "dogclf.sagemaker.best_job",
    "best_params": "dogclf.sagemaker.best_job",
    "ServingOptions": "dogclf.sagemaker.endpoints",
    "DeployOptions": "dogclf.sagemaker.endpoints",
    "deploy": "dogclf.sagemaker.endpoints",
    "delete_endpoint": "dogclf.sagemaker.endpoints",
    "invoke_endpoint": "dogclf.sagemaker.endpoints",
    "RegisterOptions": "dogclf.sagemaker.registry",
    "evaluation_document": "dogclf.sagemaker.registry",
    "register_model": "dogclf.sagemaker.registry",
    "set_approval": "dogclf.sagemaker.registry",
    "is_package_arn": "dogclf.sagemaker.registry",
    "package_model_data": "dogclf.sagemaker.registry",
    "TransformOptions": "dogclf.sagemaker.batch",
    "batch_transform": "dogclf.sagemaker.batch",
    "batch_results": "dogclf.sagemaker.batch",
    "parse_out": "dogclf.sagemaker.batch_output",
    "download_profiler_report": "dogclf.sagemaker.reports",
    "download_rule_reports": "dogclf.sagemaker.reports",
    "JobReports": "dogclf.sagemaker.reports",
    "download_job_reports": "dogclf.sagemaker.reports",
    "JobVerdicts": "dogclf.sagemaker.insight",
    "SyncResult": "dogclf.sagemaker.s3",
    "parse_s3_uri": "dogclf.sagemaker.s3",
    "make_client": "dogclf.sagemaker.session",
    "object_exists": "dogclf.sagemaker.s3",
    "prefix_exists": "dogclf.sagemaker.s3",
    "list_keys": "dogclf.sagemaker.s3",
    "upload_folder": "dogclf.sagemaker.s3",
    "download_folder": "dogclf.sagemaker.s3",
    "ImageSerializer": "dogclf.sagemaker.serializers",
    "TopKDeserializer": "dogclf.sagemaker.serializers",
    "LogitsDeserializer": "dogclf.sagemaker.serializers",
    "make_predictor": "dogclf.sagemaker.serializers",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from dogclf.sagemaker.batch import TransformOptions, batch_results, batch_transform
    from dogclf.sagemaker.batch_output import parse_out
    from dogclf.sagemaker.best_job import BestParams, best_params
    from dogclf.sagemaker.debugger import (
        BUILTIN_RULES,
        RULE_EVALUATOR_ACCOUNTS,
        custom_rule_classes,
        debugger_config,
        profiler_config,
        rule_image,
        rule_parameter_strings,
        rule_signatures,
        rules_source,
    )
    from dogclf.sagemaker.endpoints import DeployOptions, ServingOptions, delete_endpoint, deploy, invoke_endpoint
    from dogclf.sagemaker.estimators import EstimatorOptions, estimator_hyperparameters, make_estimator, submit
    from dogclf.sagemaker.insight import JobVerdicts
    from dogclf.sagemaker.registry import (
        RegisterOptions,
        evaluation_document,
        is_package_arn,
        package_model_data,
        register_model,
        set_approval,
    )
    from dogclf.sagemaker.reports import (
        JobReports,
        download_job_reports,
        download_profiler_report,
        download_rule_reports,
    )
    from dogclf.sagemaker.s3 import (
        SyncResult,
        download_folder,
        list_keys,
        object_exists,
        parse_s3_uri,
        prefix_exists,
        upload_folder,
    )
    from dogclf.sagemaker.serializers import ImageSerializer, LogitsDeserializer, TopKDeserializer, make_predictor
    from dogclf.sagemaker.session import (
        FRAMEWORK_VERSION,
        PY_VERSION,
        Connection,
        SageMakerError,
        connect,
        default_bucket_name,
        make_client,
    )
    from dogclf.sagemaker.staging import CODE_DIR, ENTRY_SCRIPTS, stage_source_dir
    from dogclf.sagemaker.tuners import SDK_STRATEGIES, make_tuner, sagemaker_ranges
    from dogclf.sagemaker.waiting import (
        RULE_FINAL,
        TrainingOutputs,
        describe,
        rule_statuses,
        training_outputs,
        wait_for,
        wait_for_rules,
    )

__getattr__ = lazy_exports(__name__, _EXPORTS)
