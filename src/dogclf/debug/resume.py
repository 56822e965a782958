"""A resumed run's local smdebug folder: the hook's step counters per finished epoch, and the clean-up before it.

smdebug numbers steps from its own counters and refuses (or silently stops writing to) a folder that a previous
process wrote: after a kill its `claim.smd` is left behind, after a clean exit its `training_job_end.ts`. A
resumed run drops what the killed process wrote after its last checkpoint, then continues the step numbers
from the counters saved at the end of that epoch, so its tensors line up with an uninterrupted run's.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

from dogclf.fsutil import atomic_write_text

log = logging.getLogger("dogclf")

STATE_FILE = "hook_state.json"
_LEFTOVERS = ("claim.smd", "training_job_end.ts")  # smdebug's markers of the process that wrote before
_TENSOR_FOLDERS = ("events", "index", "collections")
_STEP = re.compile(r"^(\d{12})(?:_|$)")  # events/<step>/, index/<bucket>/<step>_worker_N.json[.tmp]


def hook_state(hook: Any) -> dict[str, Any]:
    """The hook's step counters (global and per mode), JSON-ready."""
    return {"step": hook.step, "mode_steps": {mode.name: step for mode, step in hook.mode_steps.items()}}


def record_epoch(folder: Path, epoch: int, hook: Any) -> None:
    """Save the hook's counters at the end of `epoch` (epochs done), next to its tensors."""
    states = _read_states(folder)
    states[str(epoch)] = hook_state(hook)
    atomic_write_text(folder / STATE_FILE, json.dumps(states, indent=2))


def prepare_folder(folder: Path, epoch: int) -> dict[str, Any] | None:
    """Make `folder` writable for a run resuming after `epoch`; the counters to continue from (None: start over).

    Steps written after `epoch` are removed; without counters for `epoch` every earlier tensor goes too, so that
    the restarted step numbers never mix with old ones.
    """
    for name in _LEFTOVERS:
        (folder / name).unlink(missing_ok=True)
    state = _read_states(folder).get(str(epoch)) if epoch else None
    if epoch and state is None and _has_tensors(folder):
        log.warning("debug: %s has no step counters for epoch %d; its earlier tensors are removed", folder, epoch)
    _drop_steps_after(folder, state["step"] if state else -1)
    return state


def restore(hook: Any, state: dict[str, Any]) -> None:
    """Continue the hook's step counters from `state`."""
    from smdebug.core.modes import ModeKeys

    hook.step = state["step"]
    hook.mode_steps = {ModeKeys[name]: step for name, step in state["mode_steps"].items()}
    log.info("debug: tensors continue after step %d", hook.step)


def _read_states(folder: Path) -> dict[str, Any]:
    path = folder / STATE_FILE
    try:
        states = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("debug: ignoring unreadable %s (%s)", path, exc)
        return {}
    return states if isinstance(states, dict) else {}


def _has_tensors(folder: Path) -> bool:
    return any((folder / name).is_dir() and any((folder / name).iterdir()) for name in _TENSOR_FOLDERS)


def _drop_steps_after(folder: Path, last: int) -> None:
    """Delete the event and index files of steps after `last` (all of them, and the collections, for -1)."""
    if last < 0:
        for name in _TENSOR_FOLDERS:
            shutil.rmtree(folder / name, ignore_errors=True)
        return
    for path in [*(folder / "events").glob("*"), *(folder / "index").glob("*/*")]:
        match = _STEP.match(path.name)
        if match and int(match.group(1)) > last:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
