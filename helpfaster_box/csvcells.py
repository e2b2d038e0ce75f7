"""CSV cells that are safe to open in a spreadsheet (shared by every CSV export)."""

from __future__ import annotations

import csv
import io
from typing import Any


def csv_cell(value: Any) -> Any:
    """Visitors type these fields: a leading = + - @ would run as a spreadsheet formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_line(values: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if v is None else v for v in values])
    return buf.getvalue()
