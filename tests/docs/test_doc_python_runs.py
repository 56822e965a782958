"""The Python blocks of the docs that run in seconds are run, as written, in their own process.

The serving clients talk to a real `dogclf serve` of a tiny model (only the documented 127.0.0.1:8080 is
replaced by the port it listens on). The other blocks train a ResNet (minutes on a shared CPU), or need AWS, a
SageMaker endpoint or Triton's client: they are checked for their dogclf names only (test_doc_commands).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_doc_commands import blocks

from conftest import ROOT
from dogclf.artifact import read_metadata
from dogclf.serve.local import LocalEndpoint

DOC_URL = "127.0.0.1:8080"


def _block(doc: str, words: str) -> str:
    """The one Python block of `doc` that contains `words` (a moved or rewritten block fails here, not silently)."""
    found = [b.text for b in blocks([ROOT / doc]) if b.lang == "python" and words in b.text]
    assert len(found) == 1, f"{doc}: {len(found)} Python blocks contain {words!r}"
    return found[0]


def _run(code: str, cwd: Path) -> str:
    """Run `code` in a fresh interpreter in `cwd`; its stdout (a failure shows its stderr)."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def endpoint(tiny_run):
    with LocalEndpoint(tiny_run, "--precision", "fp32", "--threads", "1") as ep:
        yield ep


@pytest.fixture()
def dog_folder(tiny_data, tmp_path) -> Path:
    """A folder holding dog.jpg, as the serving examples expect."""
    shutil.copy(next((tiny_data / "test").rglob("*.jpg")), tmp_path / "dog.jpg")
    return tmp_path


@pytest.mark.parametrize("words", ["requests.post", "sagemaker-runtime"])
def test_serving_clients_run_against_a_real_endpoint(words, endpoint, dog_folder, tiny_run):
    code = _block("docs/serving.md", words)
    assert DOC_URL in code
    out = _run(code.replace(DOC_URL, endpoint.url.removeprefix("http://")), dog_folder)
    classes = read_metadata(tiny_run / "model").class_names
    lines = out.splitlines()
    assert lines and all(any(repr(c) in line for c in classes) for line in lines), out
