"""Debugging: smdebug hooks, Debugger-style rules and the HTML debug report (smdebug loaded by `compat.load`)."""
