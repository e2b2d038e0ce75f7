"""The `from` / `to` filters of list, export and analytics endpoints: ISO 8601 in, naive UTC out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helpfaster_box.errors import Invalid


def parse_time(value: str | None, name: str) -> datetime | None:
    """ISO 8601 (date or date-time, Z or offset) -> naive UTC."""
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Invalid(
            f"{name} must be an ISO 8601 date or time, e.g. 2026-11-26T10:00:00Z.", field=name
        ) from None
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def is_date_only(value: str | None) -> bool:
    return value is not None and len(value) == 10


def time_range(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """Inclusive bounds; a date-only `to` includes that whole day."""
    a, b = parse_time(start, "from"), parse_time(end, "to")
    if b is not None and is_date_only(end):
        b = b + timedelta(days=1) - timedelta(microseconds=1)
    if a is not None and b is not None and a > b:
        raise Invalid("from must not be after to.", field="from")
    return a, b
