"""The web layer's one status table and the one function that renders every error.

Services and the store raise the domain errors of `helpfaster_box.errors`; Litestar
raises its own for routing, parsing and validation; anything else is a crash. All of
them pass through `handle_exception` and leave as `{error, message, details?}`.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException

from helpfaster_box import errors as domain

log = logging.getLogger("helpfaster_box.errors")

STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "server_error",
    503: "overloaded",
}


class UnsupportedMediaType(domain.DomainError):
    """The body's Content-Type is not one this route reads (an HTTP-level failure)."""

    default_message = "Unsupported content type."


# Domain error -> (status, code). The one place a domain error meets HTTP.
DOMAIN_STATUS: dict[type[domain.DomainError], tuple[int, str]] = {
    domain.Invalid: (400, "bad_request"),
    domain.Unauthorized: (401, "unauthorized"),
    domain.Forbidden: (403, "forbidden"),
    domain.NotFound: (404, "not_found"),
    domain.Conflict: (409, "conflict"),
    domain.TooLarge: (413, "payload_too_large"),
    UnsupportedMediaType: (415, "unsupported_media_type"),
    domain.RateLimited: (429, "rate_limited"),
    domain.Busy: (503, "overloaded"),
    domain.Unavailable: (503, "unavailable"),
}
ERROR_CODES = sorted({*STATUS_CODES.values(), *(code for _, code in DOMAIN_STATUS.values())})

DEFAULT_MESSAGES: dict[int, str] = {
    400: "The request is invalid.",
    401: "A valid API key is required in the x-api-key header.",
    403: "This API key's role may not do that.",
    404: "Not found.",
    405: "Method not allowed.",
    409: "Conflict.",
    413: "The request body is too large.",
    415: "Unsupported content type.",
    429: "Rate limit exceeded.",
    500: "Something went wrong on our side. It has been logged.",
    503: "The server is busy; retry shortly.",
}


def domain_status(exc: domain.DomainError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    return 400, "bad_request"


def error_body(
    status: int, message: str, details: list[dict[str, Any]] | None = None, *, code: str | None = None
) -> dict[str, Any]:
    code = code or STATUS_CODES.get(status) or ("bad_request" if status < 500 else "server_error")
    body: dict[str, Any] = {"error": code, "message": message}
    if details:
        body["details"] = details
    return body


def render(
    status: int,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    code: str | None = None,
) -> Response[dict[str, Any]]:
    return Response(
        content=error_body(status, message, details, code=code), status_code=status, headers=headers or {}
    )


def domain_body(exc: domain.DomainError) -> dict[str, Any]:
    status, code = domain_status(exc)
    return error_body(status, exc.message, exc.details, code=code)


def _validation_details(exc: ValidationException) -> tuple[str, list[dict[str, Any]]]:
    details: list[dict[str, Any]] = []
    wheres: list[str] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            field = item.get("key") or item.get("source") or None
            if item.get("source") == "body" and field == "data":
                field = None  # Litestar's name for the whole body, not a field the client sent
                wheres.append(" (request body)")
            else:
                wheres.append(f" (field {field})" if field else "")
            details.append({"field": field, "message": str(item.get("message", ""))})
    detail = exc.detail or "Validation failed."
    # Litestar's msgspec detail reads "Validation failed for POST /v1/x"; the useful
    # part (field path and reason) lives in the extra list.
    if details and details[0]["message"]:
        detail = f"{details[0]['message']}{wheres[0]}"
    return detail, details


def handle_exception(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    """Every failure passes here, including routing 404/405 and crashes."""
    if isinstance(exc, domain.DomainError):
        status, code = domain_status(exc)
        return render(status, exc.message, details=exc.details, headers=exc.headers, code=code)
    if isinstance(exc, ValidationException):
        message, details = _validation_details(exc)
        return render(400, message, details=details or None)
    if isinstance(exc, HTTPException):
        status = exc.status_code
        if status >= 500:
            log.error("HTTP %s on %s %s: %s", status, request.method, request.url.path, exc.detail)
            return render(status, DEFAULT_MESSAGES.get(status, DEFAULT_MESSAGES[500]))
        message = (
            exc.detail
            if exc.detail and exc.detail != _phrase(status)
            else DEFAULT_MESSAGES.get(status, "Error.")
        )
        if status == 400 and isinstance(exc.__cause__, SerializationException):
            # msgspec's bare reason ("Input data was truncated") does not say what was wrong.
            reason = message.removeprefix("JSON is malformed: ")
            message = f"The request body is not valid JSON: {reason}"
        if status == 404 and message == DEFAULT_MESSAGES[404]:
            message = f"No route for {request.method} {request.url.path}."
        if status == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
        headers = dict(exc.headers or {})
        return render(status, message, headers=headers)
    log.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render(500, DEFAULT_MESSAGES[500])


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
