import subprocess
import sys

import pytest

from dogclf.errors import DogclfError
from dogclf.extras import MissingExtraError, require

# Runs the CLI with `module` made unimportable (None in sys.modules makes `import module` fail as if absent).
BLOCKED_CLI = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from dogclf.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def test_require_returns_the_module_when_installed():
    assert require("json", "none").dumps([1]) == "[1]"


def test_require_names_the_extra_when_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'dogclf\[tune\]'") as info:
        require("optuna", "tune", "dogclf tune needs optuna")
    assert isinstance(info.value, DogclfError) and "\n" not in str(info.value)


def test_require_keeps_a_broken_dependency_as_it_is(tmp_path, monkeypatch):
    # A package that is installed but whose own import fails on something else is a real bug, not a missing extra.
    (tmp_path / "brokenpkg.py").write_text("import missing_dependency_of_brokenpkg\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="missing_dependency_of_brokenpkg"):
        require("brokenpkg", "x")


@pytest.mark.parametrize(
    ("blocked", "argv", "extra"),
    [
        ("optuna", ["tune", "--data", "nowhere", "--output", "out"], "tune"),
        ("uvicorn", ["serve", "nowhere.tar.gz"], "serve"),
        ("starlette", ["serve", "nowhere.tar.gz"], "serve"),
    ],
)
def test_cli_without_an_extra_says_what_to_install(tmp_path, blocked, argv, extra):
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED_CLI, blocked, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr  # one line, no traceback
    assert f"pip install 'dogclf[{extra}]'" in proc.stderr and "Traceback" not in proc.stderr
