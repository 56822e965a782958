"""Jobs and models submitted from a wheel install (no clone around it) ship the packaged entry scripts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from conftest import ROOT

SCRIPT = """
import sys
sys.path[:] = [p for p in sys.path if not p.startswith({src!r})]  # no way back to the clone
from pathlib import Path

import dogclf
from dogclf.entry_scripts import script_path
from dogclf.sagemaker.staging import stage_source_dir

assert Path(dogclf.__file__).is_relative_to({site!r}), dogclf.__file__
staged = stage_source_dir(["train.py", "hpo.py"])
for name in ("train.py", "hpo.py"):
    assert (staged / name).read_bytes() == script_path(name).read_bytes()
assert (staged / "dogclf" / "entrypoints" / "inference.py").is_file()
assert "pydantic" in (staged / "requirements.txt").read_text()
print("staged", sorted(p.name for p in staged.iterdir()))
"""


def test_wheel_install_stages_the_packaged_entry_scripts(tmp_path):
    tree = tmp_path / "tree"  # build from a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT / "src" / "dogclf", tree / "src" / "dogclf", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", "dist", "."]
    subprocess.run(build, cwd=tree, check=True, capture_output=True, timeout=300)
    (wheel,) = (tree / "dist").glob("dogclf-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        assert {f"dogclf/entrypoints/{n}" for n in ("train.py", "hpo.py", "inference.py")} <= names
        site = tmp_path / "site"
        whl.extractall(site)  # what pip does with a pure-Python wheel

    code = SCRIPT.format(src=str(ROOT / "src"), site=str(site))
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "'train.py'" in proc.stdout and "'dogclf'" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "dogclf.entrypoints.train", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.startswith("usage: train.py"), proc.stderr[-2000:]
