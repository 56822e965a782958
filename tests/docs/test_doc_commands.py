"""Every command in README.md and docs/*.md is checked against the real parsers, so the docs cannot rot.

Commands are the lines of ```bash/sh/shell/console blocks in README.md and docs/*.md (docs/cli.md is
generated from the parsers and skipped): continuations are joined, comments and `$ ` prompts dropped,
`A=b` prefixes skipped, and `a && b`, `a | b`, `a; b` checked one by one.

- `dogclf ...` is parsed by `dogclf.cli.main.build_parser()` and must select a command.
- `python PATH.py ...` and `python -m dogclf.MODULE ...` run the script up to its argparse parse and stop
  there: the parse must succeed, nothing after it runs. A thin wrapper (`src/dogclf/entrypoints/train.py`, which only
  imports and calls `main` of a dogclf module) is run the same way, so the packaged module's parser decides.
- `make TARGET` needs a rule of that name in the Makefile; `curl URL` needs a route of the local endpoint.
- Any other program must be listed in EXTERNAL (tools outside this project, not checked).

Parsing is strict: option abbreviations are off (`--epoch` for `--epochs` fails), unrecognized arguments
fail, and `--help`/`--version` count as success. Placeholders are plain words (`JOB`, `"$ROLE"`), which
argparse accepts as values.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import importlib.util
import json
import re
import runpy
import shlex
import sys
import textwrap
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest
import yaml

from conftest import ROOT

SHELL_BLOCKS = {"bash", "sh", "shell", "console"}
# Not this project's commands: never run, never checked.
EXTERNAL = {"aws", "cd", "docker", "export", "git", "mlflow", "pip", "tensorboard"}
EXTERNAL_MODULES = {"pip", "pytest", "venv"}
SEPARATORS = {"&&", "||", "|", ";", "&"}
REDIRECTS = {">", ">>", "<", "2>"}
FENCE = re.compile(r"^[ \t]*```(\w*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.M | re.S)
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def doc_files() -> list[Path]:
    docs = [p for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "cli.md"]
    return [ROOT / "README.md", *docs]


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, dedented text and where it starts."""

    lang: str
    text: str
    source: str


@dataclass(frozen=True)
class Command:
    """One simple command (program + arguments) and the line it came from."""

    argv: tuple[str, ...]
    source: str

    def __str__(self) -> str:
        return f"{self.source}: {shlex.join(self.argv)}"


def blocks(files: list[Path] | None = None) -> list[Block]:
    out = []
    for path in files or doc_files():
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start(2)) + 1
            out.append(Block(m.group(1).lower(), textwrap.dedent(m.group(2)), f"{path.relative_to(ROOT)}:{line}"))
    return out


def logical_lines(block: Block) -> Iterator[tuple[str, str]]:
    """(line, source) with backslash continuations joined and prompts removed."""
    path, first = block.source.rsplit(":", 1)
    pending, start = "", 0
    for i, raw in enumerate(block.text.splitlines()):
        if not pending:
            start = i
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = (pending + line).strip(), ""
        line = line[2:] if line.startswith("$ ") else line
        if line and not line.startswith("#"):
            yield line, f"{path}:{int(first) + start}"


def split_line(line: str) -> list[list[str]]:
    """Shell words of each simple command in `line` (separators split, redirections dropped)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    skip_next = False
    for token in lexer:
        if skip_next:
            skip_next = False
        elif token in SEPARATORS:
            commands.append([])
        elif token in REDIRECTS:
            skip_next = True
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def commands(files: list[Path] | None = None) -> list[Command]:
    out = []
    for block in blocks(files):
        if block.lang not in SHELL_BLOCKS:
            continue
        for line, source in logical_lines(block):
            for words in split_line(line):
                while words and ASSIGNMENT.match(words[0]):
                    words = words[1:]
                if words:
                    out.append(Command(tuple(words), source))
    return out


# ---------------------------------------------------------------------------------------- strict argparse
class _Parsed(BaseException):
    """The outermost parse succeeded; raised to stop the program before it does any work."""


class _ParseError(BaseException):
    """argparse rejected the arguments."""


class _Exit(BaseException):
    """argparse exited by itself (--help, --version, or an error status)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@contextlib.contextmanager
def strict_argparse() -> Iterator[None]:
    """No abbreviations; errors raise _ParseError; the outermost successful parse raises _Parsed."""
    original = argparse.ArgumentParser.parse_known_args
    depth = 0

    def parse_known_args(self, args=None, namespace=None):
        nonlocal depth
        self.allow_abbrev = False
        depth += 1
        try:
            namespace, extras = original(self, args, namespace)
        finally:
            depth -= 1
        if depth:
            return namespace, extras  # a subparser: the outer parser decides about extras
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        raise _Parsed(namespace)

    def error(self, message):
        raise _ParseError(f"{self.prog}: error: {message}")

    def exit(self, status=0, message=None):
        raise _Exit(status)

    with mock.patch.multiple(argparse.ArgumentParser, parse_known_args=parse_known_args, error=error, exit=exit):
        yield


def _parse(run) -> tuple[str | None, argparse.Namespace | None]:
    """(problem or None, parsed namespace or None) of running `run` under strict_argparse."""
    try:
        with strict_argparse():
            run()
    except _Parsed as done:
        return None, done.args[0]
    except _ParseError as exc:
        return str(exc), None
    except _Exit as exc:
        return (None if exc.status == 0 else f"argparse exited with status {exc.status}"), None
    except SystemExit as exc:
        return f"exited with {exc.code!r} before parsing its arguments", None
    return "finished without parsing any arguments", None


# -------------------------------------------------------------------------------------------- checkers
def check_dogclf(args: list[str]) -> str | None:
    from dogclf.cli.main import build_parser

    problem, namespace = _parse(lambda: build_parser().parse_args(args))
    if problem is None and namespace is not None and not callable(getattr(namespace, "func", None)):
        problem = "no command selected"
    return problem


def check_python(args: list[str]) -> str | None:
    if args[:1] == ["-m"] and len(args) > 1:
        module, rest = args[1], args[2:]
        if module.split(".")[0] in EXTERNAL_MODULES:
            return None
        if not module.startswith("dogclf") or importlib.util.find_spec(module) is None:
            return f"module {module} is not part of dogclf"
        with mock.patch.object(sys, "argv", [module, *rest]), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "found in sys.modules": imported by other tests
            return _parse(lambda: runpy.run_module(module, run_name="__main__"))[0]
    if not args:
        return "python without a script"
    script = ROOT / args[0]
    if not script.is_file():
        return f"{args[0]} does not exist"
    source = script.read_text(encoding="utf-8")
    wrapped = wrapped_module(source)
    if wrapped is not None and wrapped.origin:  # a thin wrapper: the module it runs parses the arguments
        source = Path(wrapped.origin).read_text(encoding="utf-8")
    if "ArgumentParser" not in source and "argv" not in source:  # it would run to the end, not stop at a parse
        return f"{args[0]} reads no arguments (no ArgumentParser, no argv), so its command cannot be checked"
    with mock.patch.object(sys, "argv", [str(script), *args[1:]]):
        return _parse(lambda: runpy.run_path(str(script), run_name="__main__"))[0]


def wrapped_module(source: str):
    """The spec of the dogclf module whose `main` a wrapper script imports (`from dogclf.x import main`), or None."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "dogclf":
            if any(alias.name == "main" for alias in node.names):
                return importlib.util.find_spec(node.module)
    return None


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_.-]+):", (ROOT / "Makefile").read_text(), re.M))


def check_make(args: list[str]) -> str | None:
    goals = [a for a in args if not a.startswith("-") and "=" not in a]
    missing = sorted(set(goals) - makefile_targets())
    return f"no Makefile target {missing}" if missing or not goals else None


def _curl_headers(args: list[str]) -> dict[str, str]:
    pairs = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-H", "--header")]
    return {k.strip().lower(): v.strip() for k, _, v in (p.partition(":") for p in pairs)}


def check_curl(args: list[str]) -> str | None:
    from dogclf.serve.codecs import SUPPORTED_ACCEPTS, SUPPORTED_CONTENT_TYPES, media_type
    from dogclf.serve.server import ROUTES

    urls = [a for a in args if a.startswith(("http://", "https://"))]
    if len(urls) != 1:
        return "expected one URL"
    path = urlsplit(urls[0]).path
    if not any(re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", r), path) for r in ROUTES):
        return f"{path} is not a route of the endpoint ({', '.join(ROUTES)})"
    headers = _curl_headers(args)
    if "content-type" in headers and media_type(headers["content-type"])[0] not in SUPPORTED_CONTENT_TYPES:
        return f"Content-Type {headers['content-type']} is not supported"
    if "accept" in headers and media_type(headers["accept"])[0] not in SUPPORTED_ACCEPTS:
        return f"Accept {headers['accept']} is not produced"
    return None


CHECKERS = {"dogclf": check_dogclf, "python": check_python, "python3": check_python, "make": check_make,
            "curl": check_curl}  # fmt: skip


def problem(command: Command) -> str | None:
    """Why the command would not work as written, or None."""
    program, *args = command.argv
    name = Path(program).name
    if name in EXTERNAL:
        return None
    if name not in CHECKERS:
        return f"unknown program {name!r}: add a checker to test_doc_commands.py or list it in EXTERNAL"
    return CHECKERS[name](args)


# ----------------------------------------------------------------------------------------------- tests
ALL = commands()


def test_docs_have_commands_of_every_kind():
    programs = {Path(c.argv[0]).name for c in ALL}
    assert {"dogclf", "python", "make", "curl"} <= programs, programs
    groups = {c.argv[1] for c in ALL if c.argv[0] == "dogclf"}
    from dogclf.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) <= groups, f"command groups without an example: {set(sub.choices) - groups}"


@pytest.mark.parametrize("command", ALL, ids=str)
def test_doc_command_parses(command: Command):
    assert problem(command) is None, f"{command}\n  -> {problem(command)}"


BROKEN = [
    ("dogclf trian --data d --output o", "invalid choice: 'trian'"),
    ("dogclf train --data d --output o --learning-rate 0.1", "unrecognized arguments: --learning-rate"),
    ("dogclf train --data d --output o --epoch 3", "unrecognized arguments: --epoch"),
    ("dogclf train --data d", "the following arguments are required: --output/-o"),
    ("dogclf serve runs/r1 --max-batch 4", "unrecognized arguments: --max-batch"),
    ("dogclf evaluate runs/r1 --data d --split testing", "invalid choice: 'testing'"),
    ("dogclf sagemaker deploy s3://b/m.tar.gz", "the following arguments are required: --role"),
    ("dogclf data", "the following arguments are required: SUBCOMMAND"),
    ("python examples/no_such_example.py --help", "does not exist"),
    ("python examples/custom_dataset.py --sample /tmp/s --output o --epochz 2", "unrecognized arguments: --epochz"),
    ("python benchmarks/bench_train.py --step 3", "unrecognized arguments: --step"),
    ("python src/dogclf/entrypoints/train.py --data d --output-data-dir r --lrr 0.1", "unrecognized arguments: --lrr"),
    ("python src/dogclf/entrypoints/hpo.py --data d --output-data-dir r --batch 20", "unrecognized arguments: --batch"),
    ("python -m dogclf.entrypoints.train --data d --output-data-dir r --lrr 0.1", "unrecognized arguments: --lrr"),
    ("python entrypoints/inference.py", "reads no arguments"),
    ("python -m dogclf.cli.docgen --chek", "unrecognized arguments: --chek"),
    ("make tests", "no Makefile target ['tests']"),
    ("curl -s http://127.0.0.1:8080/predict", "is not a route"),
    ("curl -s -X POST http://127.0.0.1:8080/invocations -H 'Content-Type: text/csv'", "not supported"),
    ("kubectl apply -f x.yaml", "unknown program 'kubectl'"),
]


@pytest.mark.parametrize(("line", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_commands_are_caught(line: str, expected: str):
    (words,) = split_line(line)
    found = problem(Command(tuple(words), "test"))
    assert found is not None and expected in found, found


def test_help_and_placeholders_are_accepted():
    for line in ("dogclf train --help", "dogclf --version", "python examples/custom_dataset.py --help",
                 'dogclf sagemaker best-params JOB -o best.yaml --bucket "$BUCKET"',
                 "python src/dogclf/entrypoints/train.py --data d --output-data-dir r --lr 0.1 --epochs 2",
                 "python src/dogclf/entrypoints/hpo.py --data d --output-data-dir r --batch-size 20",
                 "python -m dogclf.entrypoints.hpo --data d --output-data-dir r --lr 0.01"):  # fmt: skip
        (words,) = split_line(line)
        assert problem(Command(tuple(words), "test")) is None, line


def test_commands_are_extracted_like_a_shell_reads_them(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text(textwrap.dedent("""\
        ```bash
        # a comment
        $ dogclf data check data/x   # trailing comment
        AWS_REGION=us-west-2 dogclf train --data d \\
          --output o --epochs 2 > log.txt && make test
        ```
        ```python
        dogclf = "not a command"
        ```
          ```sh
          dogclf serve m &
          ```
    """))  # fmt: skip
    with mock.patch.object(sys.modules[__name__], "ROOT", tmp_path):
        found = [(c.argv, c.source) for c in commands([doc])]
    assert found == [
        (("dogclf", "data", "check", "data/x"), "x.md:3"),
        (("dogclf", "train", "--data", "d", "--output", "o", "--epochs", "2"), "x.md:4"),
        (("make", "test"), "x.md:4"),
        (("dogclf", "serve", "m"), "x.md:11"),
    ]


def test_ci_and_makefile_use_existing_targets():
    ci = (ROOT / ".ci" / "run").read_text()
    goals = re.findall(r"^\s*make\s+([\w.-]+)", ci, re.M)
    assert goals and set(goals) <= makefile_targets(), goals


# ------------------------------------------------------------------------------- other fenced blocks
def _missing_dogclf_names(code: str, source: str) -> list[str]:
    """dogclf names a Python block uses that do not exist: `from dogclf.x import y` and `dogclf.y` attributes."""
    tree = ast.parse(code, source)
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "dogclf":
            module = importlib.import_module(node.module)
            missing += [f"{node.module}.{a.name}" for a in node.names if not hasattr(module, a.name)]
        elif isinstance(node, ast.Import):
            missing += [
                a.name for a in node.names if a.name.startswith("dogclf") and not importlib.util.find_spec(a.name)
            ]
        elif isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "dogclf":
            if not hasattr(importlib.import_module("dogclf"), node.attr):
                missing.append(f"dogclf.{node.attr}")
    return missing


def test_doc_python_names_are_checked_both_ways():
    good = "import dogclf\nfrom dogclf.prediction import predict_files\ndogclf.predict('run', [])\n"
    bad = "import dogclf\nfrom dogclf.prediction import predict_all\ndogclf.fit(1)\nimport dogclf.nothing\n"
    assert _missing_dogclf_names(good, "good") == []
    assert sorted(_missing_dogclf_names(bad, "bad")) == [
        "dogclf.fit",
        "dogclf.nothing",
        "dogclf.prediction.predict_all",
    ]


def _check_block(block: Block) -> None:
    if block.lang == "python":  # parsed, and every dogclf name it uses exists (running needs AWS or minutes)
        assert _missing_dogclf_names(block.text, block.source) == [], block.source
    elif block.lang == "json":
        json.loads(block.text)
    elif block.lang in ("yaml", "yml"):
        doc = yaml.safe_load(block.text)
        if isinstance(doc, dict) and "parameters" in doc:  # a search space: it must load as one
            from dogclf.tune.space import SearchSpace

            SearchSpace.model_validate(doc)


DATA_BLOCKS = [b for b in blocks() if b.lang in ("python", "json", "yaml", "yml")]


@pytest.mark.parametrize("block", DATA_BLOCKS, ids=lambda b: f"{b.source} {b.lang}")
def test_doc_code_blocks_are_valid(block: Block):
    _check_block(block)
