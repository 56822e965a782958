"""The training job request carries TensorBoardOutputConfig (container folder synced to S3); off when asked."""

from __future__ import annotations

from sm_moto import BUCKET, ROLE, aws_env, capture, conn, moto_url  # noqa: F401

import dogclf.sagemaker as sm
from conftest import tiny_config

DATA = f"s3://{BUCKET}/data/dogs"


def _submit(conn, tmp_path, mode="train", **overrides):  # noqa: F811
    seen = capture(conn, "CreateTrainingJob")
    cfg = tiny_config(tmp_path, **overrides)
    opts = sm.EstimatorOptions(role=ROLE, mode=mode, debugger=False, profiler=False)
    sm.submit(conn, sm.make_estimator(cfg, conn, opts), DATA)
    (req,) = seen
    return req


def test_training_job_syncs_tensorboard_to_s3(conn, tmp_path):  # noqa: F811
    req = _submit(conn, tmp_path)
    assert req["TensorBoardOutputConfig"] == {
        "S3OutputPath": f"s3://{BUCKET}/dogclf/tensorboard/",
        "LocalPath": "/opt/ml/output/tensorboard",
    }


def test_no_tensorboard_config_when_off_or_for_tuning_trials(conn, tmp_path):  # noqa: F811
    assert "TensorBoardOutputConfig" not in _submit(conn, tmp_path, **{"tracking.tensorboard": False})
    assert "TensorBoardOutputConfig" not in _submit(conn, tmp_path, mode="hpo")
