"""The local commands of README.md and docs/local.md RUN, in the order written, at small size.

test_doc_commands parses every documented command; this runs the local ones (data, train, resume, tune, runs,
evaluate, predict, debug, profile, export, package, serve + predict --endpoint) as a newcomer would, with sizes
shrunk (tiny_cnn, 32 px, 2 epochs, 2 trials, 3 classes) so docs and CLI cannot drift apart. The datasets the
docs assume already exist (data/dogImages, photos/) are generated; the rest comes from the commands themselves.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_doc_commands import commands

from conftest import ROOT
from dogclf.data.synthetic import make_dataset

DOCS = [ROOT / "README.md", ROOT / "docs" / "local.md"]
NOT_RUN = {"sagemaker", "quickstart"}  # AWS (moto tests cover it); quickstart has its own test
SMALL = {
    "--arch": "tiny_cnn",
    "--weights": "none",
    "--epochs": "2",
    "--batch-size": "8",
    "--image-size": "32",
    "--n-trials": "2",
    "--debug-save-interval": "1",
    "--classes": "3",
    "--per-class": "8",
    "--size": "32",
    "--max-batch-delay-ms": "1",
}
TRAINING = {
    "train": ("--arch", "--weights", "--image-size", "--workers"),
    "tune": ("--arch", "--weights", "--image-size"),
}
ADDED = {"--arch": "tiny_cnn", "--weights": "none", "--image-size": "32", "--workers": "0", "--size": "32"}
MAY_FIND_ISSUES = {"--fail-on", "--fail-on-issues"}  # exit 1 is the documented "a rule fired"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small(argv: list[str], port: int) -> list[str]:
    """`dogclf ...` with its sizes shrunk, a free port and endpoint, and the arch/weights/size flags it leaves out."""
    out = []
    for i, word in enumerate(argv):
        prev = argv[i - 1] if i else ""
        if prev in SMALL:
            word = SMALL[prev]
        elif prev == "--port":
            word = str(port)
        elif prev == "--endpoint":
            word = f"http://127.0.0.1:{port}"
        out.append(word)
    command = argv[1]
    needed = [*TRAINING.get(command, ()), *(["--size"] if argv[1:3] == ["data", "make-sample"] else [])]
    for flag in needed:
        if flag not in out:
            out += [flag, ADDED[flag]]
    return out


def _fresh_output(argv: list[str], cwd: Path) -> None:
    """A documented train/tune into an existing folder is an alternative to an earlier one: start it afresh."""
    if argv[1] in ("train", "tune") and "--resume" not in argv and "--output" in argv:
        shutil.rmtree(cwd / argv[argv.index("--output") + 1], ignore_errors=True)


def _compared_runs(argv: list[str], cwd: Path) -> None:
    """`runs compare` names runs the docs trained elsewhere: copies of the first one stand in for them."""
    if argv[1:3] != ["runs", "compare"]:
        return
    runs = [a for a in argv[3:] if a.startswith("runs/")]
    for run in runs[1:]:
        if not (cwd / run).exists():
            shutil.copytree(cwd / runs[0], cwd / run)


def _serve(argv: list[str], cwd: Path, port: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1)
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail(f"{' '.join(argv)} did not answer /ping: {proc.communicate()[1][-2000:]}")


def documented_local_commands(doc: Path) -> list:
    found = [c for c in commands([doc]) if c.argv[0] == "dogclf" and c.argv[1] not in NOT_RUN]
    assert len(found) >= 15, [str(c) for c in found]  # the parse found the doc's commands
    return found


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_documented_local_commands_run(tmp_path, doc, monkeypatch, capsys):
    """Each command through `dogclf.cli.main.main(argv)` in this process (one torch import for all); `serve` as
    its own process, which the next `predict --endpoint` talks to."""
    from dogclf.cli.main import main

    cwd, port = tmp_path, _free_port()
    monkeypatch.chdir(cwd)
    make_dataset(cwd / "data" / "dogImages", classes=3, per_class=8, size=32, eval_per_class=3)
    (cwd / "photos").mkdir()
    for image in sorted((cwd / "data" / "dogImages" / "test").rglob("*.jpg"))[:3]:
        shutil.copy(image, cwd / "photos" / image.name)
    for name in [k for k in os.environ if k.startswith(("MLFLOW_", "DOGCLF_S3"))]:  # MLflow: its local default
        monkeypatch.delenv(name)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    servers: list[subprocess.Popen] = []
    try:
        for command in documented_local_commands(doc):
            argv = small(list(command.argv), port)
            full = [sys.executable, "-m", "dogclf.cli.main", *argv[1:]]
            if argv[1] == "serve":
                for server in servers:
                    server.terminate()
                    server.wait(timeout=30)
                servers = [_serve(full, cwd, port, env)]
                continue
            _fresh_output(argv, cwd)
            _compared_runs(argv, cwd)
            code = main(argv[1:])
            out, err = capsys.readouterr()
            allowed = {0, 1} if MAY_FIND_ISSUES & set(argv) else {0}
            assert code in allowed, f"{command}\nran: {' '.join(argv)}\n{out[-2000:]}{err[-3000:]}"
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
