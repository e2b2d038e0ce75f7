"""Webhook endpoint and delivery shapes. The `whsec_` secret appears only in the
answers to create and rotate-secret."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType

from helpfaster_box.schemas import Out, Struct
from helpfaster_box.store.ids import iso, utcnow

Url = Annotated[str, Meta(min_length=1, max_length=2048)]
Events = Annotated[list[Annotated[str, Meta(max_length=100)]], Meta(min_length=1, max_length=20)]
ChatbotIds = Annotated[list[Annotated[str, Meta(max_length=100)]], Meta(max_length=100)]
Description = Annotated[str, Meta(max_length=500)]
DeliveryStatus = Literal["pending", "delivering", "succeeded", "failed"]


class WebhookCreate(Struct):
    url: Url
    events: Events
    chatbot_ids: ChatbotIds | None = None
    description: Description | None = None


class WebhookPatch(Struct):
    """Absent = unchanged; null chatbotIds = every chatbot; null description = none."""

    url: Url | UnsetType = UNSET
    events: Events | UnsetType = UNSET
    chatbot_ids: ChatbotIds | UnsetType | None = UNSET
    description: Description | UnsetType | None = UNSET
    enabled: bool | UnsetType = UNSET


class WebhookOut(Out):
    id: str
    url: str
    description: str | None
    events: list[str]
    chatbot_ids: list[str] | None
    enabled: bool
    disabled_reason: str | None
    disabled_at: str | None
    consecutive_failures: int
    last_success_at: str | None
    previous_secret_expires_at: str | None  # while set, the previous secret also signs
    created_at: str
    updated_at: str
    secret: str | None = None  # only in the answers to create and rotate-secret


class AttemptOut(Out):
    attempt: int
    attempted_at: str
    status_code: int | None
    latency_ms: int
    error: str | None


class DeliveryOut(Out):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: str
    attempts: list[AttemptOut]
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str
    updated_at: str


def _ts(value: datetime) -> str:
    return iso(value) or ""


def webhook_out(row: dict[str, Any], secret: str | None = None) -> WebhookOut:
    expires = row["previous_secret_expires_at"]
    return WebhookOut(
        id=row["id"],
        url=row["url"],
        description=row["description"],
        events=row["events"],
        chatbot_ids=row["chatbot_ids"],
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        disabled_at=iso(row["disabled_at"]),
        consecutive_failures=row["failure_streak"],
        last_success_at=iso(row["last_success_at"]),
        previous_secret_expires_at=iso(expires) if expires and expires > utcnow() else None,
        created_at=_ts(row["created_at"]),
        updated_at=_ts(row["updated_at"]),
        secret=secret,
    )


def delivery_out(row: dict[str, Any]) -> DeliveryOut:
    return DeliveryOut(
        id=row["id"],
        webhook_id=row["webhook_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        status=row["status"],
        attempts=[
            AttemptOut(
                attempt=a["attempt"],
                attempted_at=_ts(a["attempted_at"]),
                status_code=a["status_code"],
                latency_ms=a["latency_ms"],
                error=a["error"],
            )
            for a in row["attempt_log"]
        ],
        next_attempt_at=iso(row["next_attempt_at"]) if row["status"] == "pending" else None,
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        created_at=_ts(row["created_at"]),
        updated_at=_ts(row["updated_at"]),
    )
