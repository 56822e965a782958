"""Debugging: smdebug hooks, Debugger-style rules and the HTML debug report (smdebug imported lazily)."""

import os

# smdebug logs every file it opens at INFO; keep warnings unless the user chose a level.
os.environ.setdefault("SMDEBUG_LOG_LEVEL", "warning")
