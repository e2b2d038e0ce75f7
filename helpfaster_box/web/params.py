"""Query parameters shared by the list endpoints (Litestar-facing, so they live here)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

Limit = Annotated[int, Parameter(ge=1, le=100, description="Page size (1-100).")]
Cursor = Annotated[str | None, Parameter(description="Opaque cursor from nextCursor.")]
From = Annotated[str | None, Parameter(query="from", description="ISO 8601 date or time, inclusive.")]
To = Annotated[
    str | None, Parameter(query="to", description="ISO 8601, inclusive; a date includes that whole day.")
]
