"""Domain errors: what services and the store raise when a request cannot be done.

A small hierarchy in the manner of httpx's `_exceptions.py`. Nothing here knows
about HTTP: the web layer (`web/errors.py`) maps each class to its status and
renders the one error body `{error, message, details?}`.

    DomainError
    ├── NotFound        the object does not exist (or belongs to another organization)
    ├── Conflict        the request contradicts the object's current state
    ├── Invalid         the input is wrong; `field` names the offending field path
    ├── TooLarge        the input exceeds a configured limit
    ├── Forbidden       the caller's role may not do this
    ├── Unauthorized    no valid credentials
    ├── RateLimited     over the plan's limit; `retry_after_s`
    ├── Busy            a bounded resource is full; `retry_after_s`
    └── Unavailable     a component (model, engine) is not running
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base: a message for the client, optional field details and response headers."""

    default_message = "The request cannot be done."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        self.details = details
        self.headers = dict(headers or {})


class NotFound(DomainError):
    default_message = "Not found."

    @classmethod
    def of(cls, what: str) -> NotFound:
        return cls(f"{what} not found.")


class Conflict(DomainError):
    default_message = "Conflict."


class Invalid(DomainError):
    default_message = "The request is invalid."

    def __init__(self, message: str, *, field: str | None = None, **kw: Any) -> None:
        details = kw.pop("details", None)
        if details is None and field:
            details = [{"field": field, "message": message}]
        super().__init__(message, details=details, **kw)
        self.field = field


class TooLarge(DomainError):
    default_message = "The request body is too large."


class Forbidden(DomainError):
    default_message = "This API key's role may not do that."


class Unauthorized(DomainError):
    default_message = "A valid API key is required in the x-api-key header."


class _RetryLater(DomainError):
    def __init__(self, message: str | None = None, *, retry_after_s: float = 1, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = max(1, int(retry_after_s + 0.999))
        self.headers.setdefault("Retry-After", str(self.retry_after_s))


class RateLimited(_RetryLater):
    default_message = "Rate limit exceeded."


class Busy(_RetryLater):
    default_message = "The server is busy; retry shortly."


class Unavailable(DomainError):
    default_message = "This part of the service is not running."


def not_found(what: str) -> NotFound:
    return NotFound.of(what)


def invalid(message: str, *, field: str | None = None) -> Invalid:
    return Invalid(message, field=field)
