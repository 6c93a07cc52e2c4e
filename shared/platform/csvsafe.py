"""CSV files the system writes, with no cell a spreadsheet would run as a formula.

Every CSV writer (the task export, the analytics reports, any later one) goes through `write_csv`
or `safe_cell`, so the rule lives here once: a text cell starting with `=`, `+`, `-`, `@`, a tab or
a carriage return gets a leading `'` (OWASP's advice; spreadsheets show the text as typed). Numbers
stay numbers. `unquote_cell` undoes it for a file of ours read back in (the task import).
"""

from __future__ import annotations

import csv
import io
import numbers
from collections.abc import Iterable

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """One cell as text: lists joined with ", ", None as "", formula-like text quoted with '."""
    if value is None:
        return ""
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return str(value)
    text = ", ".join(str(item) for item in value) if isinstance(value, (list, tuple)) else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def unquote_cell(value: str) -> str:
    """A cell as `safe_cell` received it (only the quote safe_cell adds is removed)."""
    return value[1:] if value.startswith("'") and value[1:2] in FORMULA_START else value


def write_csv(header: Iterable, rows: Iterable[Iterable], *, lineterminator: str = "\r\n") -> bytes:
    """A whole CSV file: UTF-8 with a byte-order mark (spreadsheets then read Korean right)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=lineterminator)
    writer.writerow([safe_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue().encode("utf-8-sig")
