"""Query parameters shared by the list endpoints (Litestar-facing, so they live here)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter, QueryParameter

Limit = Annotated[int, Parameter(ge=1, le=100, description="Page size (1-100).")]
Cursor = Annotated[str | None, Parameter(description="Opaque cursor from nextCursor.")]
From = Annotated[str | None, QueryParameter(name="from", description="ISO 8601 date or time, inclusive.")]
To = Annotated[
    str | None, QueryParameter(name="to", description="ISO 8601, inclusive; a date includes that whole day.")
]
