"""The dogclf.debug.rules package joined into one source file: what SageMaker runs as a `Rule.custom` source.

SageMaker uploads a single file per custom rule. The rule modules import only numpy and smdebug besides each
other, so joining them in dependency order, with the imports between them dropped, gives a file that defines
the same classes. Read as text: the submitting machine needs no smdebug.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import tempfile
from pathlib import Path

from dogclf.errors import ConfigError
from dogclf.fsutil import atomic_write_text

PACKAGE = "dogclf.debug.rules"
MODULES = ("_common", "tensors", "losses", "classes", "__init__")  # each after those it imports
BUNDLE_NAME = "dogclf_rules.py"


def package_dir() -> Path:
    """The folder of the dogclf.debug.rules package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"{PACKAGE} is missing: custom Debugger rules need it (or pass custom_rules=())")
    return Path(next(iter(spec.submodule_search_locations)))


def _split(source: str, path: Path) -> tuple[str | None, list[str], list[str]]:
    """A module's docstring, its import statements other than the package's own and __future__, its other lines."""
    tree = ast.parse(source, filename=str(path))
    lines = source.splitlines()
    drop: set[int] = set()
    docstring, imports = ast.get_docstring(tree, clean=False), []
    for node in tree.body:
        span = range(node.lineno - 1, node.end_lineno or node.lineno)
        is_doc = node is tree.body[0] and docstring is not None and isinstance(node, ast.Expr)
        if isinstance(node, ast.Import | ast.ImportFrom) or is_doc:
            drop.update(span)
            module = getattr(node, "module", None) or ""
            if not is_doc and module != "__future__" and not module.startswith(PACKAGE):
                imports.append("\n".join(lines[i] for i in span))
    return docstring, imports, [line for i, line in enumerate(lines) if i not in drop]


def bundle_text(folder: Path | None = None) -> str:
    """The rule modules as one module: the package's docstring, the imports once, then each module's code."""
    folder = folder or package_dir()
    imports: list[str] = []
    bodies: list[str] = []
    header = ""
    for name in MODULES:
        path = folder / f"{name}.py"
        docstring, found, body = _split(path.read_text(encoding="utf-8"), path)
        header = docstring or "" if name == "__init__" else header
        imports += [i for i in found if i not in imports]
        bodies.append("\n".join(body).strip("\n"))
    parts = [f'"""{header}"""', "from __future__ import annotations", "\n".join(imports), *bodies]
    return "\n\n\n".join(parts) + "\n"


def bundle_file(out_dir: Path | None = None) -> Path:
    """Write the joined rules (into a folder named by their hash under the temp dir by default); its path."""
    text = bundle_text()
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    out = (out_dir or Path(tempfile.gettempdir()) / f"dogclf-rules-{digest}") / BUNDLE_NAME
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, text)
    return out
