"""CSV text that a spreadsheet opens as data: every CSV dogclf writes goes through csv_text.

A string cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return could run as a formula when the file
is opened in a spreadsheet (CSV injection); OWASP's remedy is a leading apostrophe, applied here to every string
(header, class names, paths, keys, messages). Numbers are written by type and stay numbers, negative ones included.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> object:
    """A string that could start a formula gets a leading apostrophe; other values are returned as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(header: Sequence[object], rows: Iterable[Sequence[object]], float_format: str = "") -> str:
    """Header and rows as CSV text (newline line ends); floats formatted with `float_format` when given."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in (header, *rows):
        writer.writerow(
            [format(v, float_format) if float_format and isinstance(v, float) else escape_cell(v) for v in row]
        )
    return buffer.getvalue()
