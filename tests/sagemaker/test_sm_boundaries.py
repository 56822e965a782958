"""The SageMaker SDK and boto3 are imported inside dogclf.sagemaker only, and its modules load light."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import ROOT

PACKAGE = ROOT / "src" / "dogclf"
AWS_MODULES = ("sagemaker", "boto3", "botocore")


def aws_imports(source: str) -> list[str]:
    """The AWS SDK modules (sagemaker, boto3, botocore) a Python source imports, anywhere in it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        found += [n for n in names if n.split(".")[0] in AWS_MODULES]
    return found


def test_the_checker_fires_on_sdk_imports_and_not_on_dogclf_sagemaker():
    assert aws_imports("def f():\n    from sagemaker.tuner import IntegerParameter\n") == ["sagemaker.tuner"]
    assert aws_imports("import boto3, os\nimport botocore.exceptions as e\n") == ["boto3", "botocore.exceptions"]
    assert aws_imports("from dogclf.sagemaker import connect\nfrom . import sagemaker\nimport os\n") == []


def test_only_dogclf_sagemaker_imports_the_aws_sdk():
    outside = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] != "sagemaker" and (found := aws_imports(path.read_text(encoding="utf-8"))):
            outside[rel.as_posix()] = found
    assert outside == {}, f"move these SDK uses into dogclf.sagemaker: {outside}"
    inside = [p for p in (PACKAGE / "sagemaker").glob("*.py") if aws_imports(p.read_text(encoding="utf-8"))]
    assert len(inside) >= 5  # the walk does see the SDK uses where they belong


def _loaded_after(code: str) -> set[str]:
    """Top-level modules in sys.modules after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(proc.stdout.split())


def test_dogclf_sagemaker_and_the_search_space_import_no_sdk_and_no_torch():
    modules = sorted(p.stem for p in (PACKAGE / "sagemaker").glob("*.py") if p.stem != "__init__")
    every = "\n".join(f"import dogclf.sagemaker.{m}" for m in modules)
    loaded = _loaded_after(f"import dogclf.sagemaker, dogclf.tune.space\n{every}")
    assert "dogclf" in loaded and not loaded & {*AWS_MODULES, "torch", "torchvision", "optuna"}, loaded
