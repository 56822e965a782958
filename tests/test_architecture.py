"""The house rules of the package, checked on its source: imports point down the layers written in pyproject.toml
([tool.dogclf] layers, also docs/index.md's package map), modules and functions stay small."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "dogclf"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
SDK_ROOTS = {"sagemaker", "boto3", "botocore"}


def _module_name(path: Path, src: Path = SRC) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules(src: Path = SRC) -> dict[str, ast.Module]:
    return {_module_name(p, src): ast.parse(p.read_text(), str(p)) for p in sorted((src / "dogclf").rglob("*.py"))}


def _lazy_exports(tree: ast.Module) -> dict[str, str]:
    """A package's `_EXPORTS = {"name": "module"}` table (names its __getattr__ loads on first use)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def _type_checking_blocks(tree: ast.Module) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks."""
    blocks = [n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING"]
    return {id(inner) for block in blocks for inner in ast.walk(block)}


def _imports(name: str, tree: ast.Module, src: Path = SRC, annotations: bool = True) -> set[str]:
    """Every module (dogclf or third-party) that `name` imports anywhere, lazy imports included.

    Annotation-only imports (`if TYPE_CHECKING:`) count unless `annotations` is False; a package's lazy-export table
    stands for its `if TYPE_CHECKING:` imports, which only mirror it for type checkers.
    """
    modules, out = _modules(src), set()
    skipped = _type_checking_blocks(tree) if _lazy_exports(tree) or not annotations else set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else name.rsplit(".", node.level)[0] + "." + node.module
            exports = _lazy_exports(modules[base]) if base in modules else {}
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in modules else exports.get(alias.name, base))
    return out


@cache
def _graph(src: Path = SRC, annotations: bool = True) -> dict[str, set[str]]:
    modules = _modules(src)
    return {n: {m for m in _imports(n, t, src, annotations) if m in modules and m != n} for n, t in modules.items()}


@cache
def _layers() -> tuple[tuple[str, ...], ...]:
    """pyproject.toml's [tool.dogclf] layers, top first; each a tuple of sibling names."""
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dogclf"]
    return tuple(tuple(line.split()) for line in table["layers"])


def _unit(module: str, layers: tuple[tuple[str, ...], ...]) -> str | None:
    """The listed name `module` belongs to: itself or its longest listed parent (the root package only itself)."""
    names = [n for layer in layers for n in layer if module == n or (n != "dogclf" and module.startswith(n + "."))]
    return max(names, key=len) if names else None


def _layer_breaks(graph: dict[str, set[str]], layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """Every import that does not point to a lower layer (a sibling counts as a break), and every unlisted module."""
    rank = {name: i for i, layer in enumerate(layers) for name in layer}
    out = [f"{m} is in no layer" for m in sorted(graph) if _unit(m, layers) is None]
    for module, deps in sorted(graph.items()):
        for dep in sorted(deps):
            a, b = _unit(module, layers), _unit(dep, layers)
            if a and b and a != b and rank[a] >= rank[b]:
                out.append(f"{module} ({a}) imports {dep} ({b})")
    return out


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for w in graph.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others (each group sorted)."""
    reach = {v: _reachable(graph, v) for v in graph}
    groups = {frozenset({v} | {w for w in reach[v] if v in reach.get(w, ())}) for v in graph if v in reach[v]}
    return sorted(sorted(g) for g in groups)


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_module_imports_form_no_cycle():
    assert _cycles(_graph()) == []


def test_imports_point_down_the_written_layers():
    assert _layer_breaks(_graph(annotations=False), _layers()) == []


def test_every_listed_layer_name_is_a_module():
    modules = _modules()
    assert [n for layer in _layers() for n in layer if n not in modules] == []


@pytest.mark.parametrize(
    ("module", "planted", "expected"),
    [
        (
            "errors.py",
            "from dogclf.cli import main",
            "dogclf.errors (dogclf.errors) imports dogclf.cli.main (dogclf.cli)",
        ),
        (
            "training/step.py",
            "    import dogclf.tune.study",
            "dogclf.training.step (dogclf.training) imports dogclf.tune.study",
        ),
        (
            "debug/hook.py",
            "from dogclf.profile import trace",
            "dogclf.debug.hook (dogclf.debug) imports dogclf.profile.trace",
        ),
        ("lonely.py", "import os", "dogclf.lonely is in no layer"),
    ],
)
def test_the_layer_check_fails_on_a_planted_break(tmp_path, module, planted, expected):
    shutil.copytree(PACKAGE, tmp_path / "dogclf", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "dogclf" / module
    code = f"def _planted():\n{planted}\n" if planted.startswith(" ") else f"{planted}\n"
    path.write_text((path.read_text() if path.exists() else "") + code)
    breaks = _layer_breaks(_graph(tmp_path, annotations=False), _layers())
    assert [b for b in breaks if b.startswith(expected)] != [], breaks
    assert _layer_breaks(_graph(annotations=False), _layers()) == []  # the real tree, for contrast


def _map_layers(text: str) -> list[tuple[str, ...]]:
    """The names leading each unindented line of docs/index.md's package map, as module names."""
    block = text.split("## Map of the package", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    layers = []
    for line in block.splitlines():
        names = re.match(r"^((?:[\w/]+(?:/|\.py) ?)+)", line)
        if names:
            paths = [p.removesuffix("/").removesuffix(".py").replace("/", ".") for p in names.group(1).split()]
            layers.append(tuple("dogclf" if p == "__init__" else f"dogclf.{p}" for p in paths))
    return layers


def test_the_docs_package_map_lists_the_layers_in_order():
    assert _map_layers((ROOT / "docs" / "index.md").read_text()) == list(_layers())


def _reimports(name: str, tree: ast.Module, modules: dict[str, ast.Module]) -> list[str]:
    """Function-level imports of a module the file already imports at its top (nothing left to defer).

    `from package import submodule` loads a module of its own and is not counted.
    """
    top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 0}
    top |= {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    out = []
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in top:
                if not any(f"{node.module}.{a.name}" in modules for a in node.names):
                    out.append(f"{name}:{node.lineno} from {node.module}")
            elif isinstance(node, ast.Import):
                out += [f"{name}:{node.lineno} import {a.name}" for a in node.names if a.name in top]
    return out


def test_functions_do_not_reimport_what_the_module_imports_at_its_top():
    modules = _modules()
    assert [r for name, tree in modules.items() for r in _reimports(name, tree, modules)] == []


def test_the_reimport_check_fires_on_a_repeat_and_not_on_a_submodule():
    tree = ast.parse(
        "import torch\nfrom dogclf.errors import ConfigError\nfrom dogclf import timings\n"
        "def f():\n    import torch\n    from dogclf.errors import DatasetError\n    from dogclf import plots\n"
    )
    found = _reimports("m", tree, _modules())
    assert found == ["m:5 import torch", "m:6 from dogclf.errors"]


def test_runtime_code_has_no_assert():
    found = [
        f"{n}:{node.lineno}" for n, t in _modules().items() for node in ast.walk(t) if isinstance(node, ast.Assert)
    ]
    assert found == []


ISSUE_CITATION = re.compile(r"\bissues? #?\d+", re.IGNORECASE)


def _issue_citations(source: str) -> list[int]:
    """Lines that cite an issue number (the history belongs in git, not in comments or docstrings)."""
    return [i for i, line in enumerate(source.splitlines(), 1) if ISSUE_CITATION.search(line)]


def test_code_cites_no_issue_numbers():
    found = {p.name: _issue_citations(p.read_text()) for p in PACKAGE.rglob("*.py")}
    assert {k: v for k, v in found.items() if v} == {}
    sample = "x = 1  # see issue 11 item 4\n(decision of Issue 13)\ncolor = '#666'\nno issue found\n"
    assert _issue_citations(sample) == [1, 2]


def test_no_library_module_imports_the_cli():
    offenders = sorted(
        n
        for n, deps in _graph().items()
        if not n.startswith("dogclf.cli") and any(d.startswith("dogclf.cli") for d in deps)
    )
    assert offenders == []


def test_only_the_sagemaker_layer_talks_to_aws():
    offenders = {
        name: sorted(m for m in _imports(name, tree) if m.split(".")[0] in SDK_ROOTS)
        for name, tree in _modules().items()
        if not name.startswith("dogclf.sagemaker")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_modules_stay_small():
    sizes = {p.relative_to(SRC).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {k: v for k, v in sizes.items() if v > MAX_MODULE_LINES} == {}


def test_functions_stay_short():
    long = {}
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{name}.{node.name}"] = length
    assert long == {}


LIGHT_MODULES = [
    "dogclf",
    "dogclf.config",
    "dogclf.cli.main",
    "dogclf.tune.space",
    "dogclf.training.metrics",
    "dogclf.hyperparameters",
    "dogclf.sagemaker",
    "dogclf.data",
    "dogclf.debug.config",
]


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_light_modules_do_not_load_torch(module):
    code = (
        f"import sys, {module}\n"
        "from dogclf.cli.main import build_parser\n"
        "build_parser()\n"
        "heavy = ('torch', 'torchvision', 'sagemaker', 'boto3', 'smdebug', 'optuna')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stderr
