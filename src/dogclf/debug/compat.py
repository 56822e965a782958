"""Loading smdebug 1.0.34 the one way dogclf does: quiet logs, a clear error when absent, numpy 2 patched.

Its tensor writer calls numpy 2's removed `ndarray.tostring()`: `smdebug.core.tfevent.util.make_tensor_proto`
is the only caller and `smdebug.core.writer` imports it by name. `apply()` swaps in a copy that calls
`tobytes()` (same bytes) in both places, once per process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from dogclf.extras import require

_applied = False


def _make_tensor_proto(nparray_data, tag):
    """A copy of smdebug's make_tensor_proto with `tobytes()` in place of numpy 2's removed `tostring()`."""
    from smdebug.core.tfevent.util import TensorProto, TensorShapeProto, _get_proto_dtype

    isnum, dtype = _get_proto_dtype(nparray_data.dtype)
    dims = [TensorShapeProto.Dim(size=d, name=f"{tag}_{d}") for d in nparray_data.shape]
    shape = TensorShapeProto(dim=dims)
    if isnum:
        return TensorProto(dtype=dtype, tensor_content=nparray_data.tobytes(), tensor_shape=shape)
    proto = TensorProto(tensor_shape=shape)
    for s in nparray_data:
        proto.string_val.append(bytes(s, encoding="utf-8"))
    return proto


def needs_fix() -> bool:
    """True when numpy lacks `ndarray.tostring` (numpy >= 2), which smdebug's writer calls."""
    import numpy as np

    return not hasattr(np.empty(0), "tostring")


def apply() -> None:
    """Patch smdebug's tensor writer for numpy 2 (idempotent; a no-op on numpy 1)."""
    global _applied
    if _applied or not needs_fix():
        return
    import smdebug.core.tfevent.util as util
    import smdebug.core.writer as writer

    util.make_tensor_proto = _make_tensor_proto
    writer.make_tensor_proto = _make_tensor_proto
    _applied = True


def load() -> None:
    """Import smdebug (or name the extra to install), INFO chatter off and logs on stderr, then `apply()`."""
    # smdebug reads its log level once, at import; keep warnings unless the user chose a level.
    os.environ.setdefault("SMDEBUG_LOG_LEVEL", "warning")
    # Its logger opens a handler on sys.stdout at import: stdout carries dogclf's results (JSON, tables) alone.
    with contextlib.redirect_stdout(sys.stderr):
        require("smdebug", "debug", "the debug hook and rules need smdebug")
    logs_to_stderr()
    apply()


def logs_to_stderr() -> None:
    """Point smdebug's stdout log handler at stderr (also when smdebug was imported before `load`)."""
    for handler in logging.getLogger("smdebug").handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.__stdout__):
            handler.setStream(sys.stderr)
