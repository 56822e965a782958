"""What `dogclf` does when it owns its process: keep the cyclic garbage collector off torch's heap.

Importing torch and torchvision leaves ~330k long-lived objects. Each full collection traces all of them
(0.3 s on a 2-core machine): a few run while they are imported, more during a run, and the interpreter runs
more at exit, after the last line is printed. None finds garbage among them. Frozen (gc.freeze), they are
left out of every collection. Only a process's owner may do this: frozen objects are never collected as
cycles, which a long-lived caller of `dogclf.cli.main.main([...])`, such as a test session, would feel.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterable

_owned = False


def take_ownership() -> None:
    """Mark this process as the CLI's own (the console script or `python -m dogclf.cli.main`)."""
    global _owned
    _owned = True


def preload(modules: Iterable[str]) -> None:
    """Import `modules`; in an owned process with the collector paused, then freeze everything loaded so far."""
    enabled = _owned and gc.isenabled()
    if enabled:
        gc.disable()
    try:
        for name in modules:
            importlib.import_module(name)
    finally:
        if enabled:
            gc.enable()
    if _owned:
        gc.freeze()


def before_exit() -> None:
    """In an owned process, freeze the heap: the interpreter's exit then frees it without tracing it for cycles."""
    if _owned:
        gc.freeze()
