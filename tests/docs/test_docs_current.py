"""Docs cannot drift: generated references are current and the README's code runs."""

import re
import subprocess
import sys

from conftest import ROOT
from dogclf.cli import docgen


def test_generated_docs_are_current():
    assert (ROOT / "docs" / "configuration.md").read_text() == docgen.configuration_md(), (
        "docs/configuration.md is stale: run `python -m dogclf.cli.docgen`"
    )
    assert (ROOT / "docs" / "cli.md").read_text() == docgen.cli_md(), (
        "docs/cli.md is stale: run `python -m dogclf.cli.docgen`"
    )


def test_readme_python_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "README has a python example"
    for code in blocks:
        r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "Affenpinscher" in r.stdout


def test_readme_names_the_ci_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and re.search(r"^make test$", ci, re.M)
