"""The trackers share one environment with smdebug: protobuf stays at what smdebug needs, all import together."""

from __future__ import annotations

import subprocess
import sys

import pytest

CODE = """
import importlib.util, sys, tempfile
import smdebug.pytorch
import tensorboard
from torch.utils.tensorboard import SummaryWriter
from google.protobuf import __version__ as protobuf
with tempfile.TemporaryDirectory() as folder:
    writer = SummaryWriter(folder)
    writer.add_scalar("x", 1.0, 1)
    writer.close()
if importlib.util.find_spec("mlflow") is not None:
    import mlflow
    mlflow.tracking.MlflowClient(f"sqlite:///{folder}.db")
print(tensorboard.__version__, protobuf, "mlflow" in sys.modules)
"""


def test_smdebug_tensorboard_and_mlflow_import_in_one_process():
    pytest.importorskip("smdebug")
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    tb_version, protobuf, _ = out.stdout.split()[-3:]
    assert tuple(int(x) for x in tb_version.split(".")[:2]) < (2, 21)  # 2.21 needs protobuf >= 6.31.1
    assert protobuf.startswith("3.20.")  # what smdebug 1.0.34 needs


ENGINES = """
import smdebug.pytorch
import onnx, onnxruntime.quantization, openvino, nncf
from google.protobuf import __version__ as protobuf
print(protobuf)
"""


def test_inference_engines_share_the_environment_with_smdebug():
    """dogclf[onnx] and dogclf[openvino] keep protobuf where smdebug needs it, and pip sees no conflict."""
    pytest.importorskip("smdebug")
    out = subprocess.run([sys.executable, "-c", ENGINES], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-1].startswith("3.20.")
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
