"""Webhook endpoints (admin only): CRUD, test event, secret rotation, delivery log, retry.

URL policy: only http:// and https://, no credentials in the URL. Whether
loopback, private and link-local addresses are allowed is the setting
`webhook_allow_private` (default true: this is an intranet appliance and its
receivers usually are intranet services). With it false, the host is resolved
at creation and again before every attempt, and any non-public address is
refused. Receivers' answers are never shown beyond the status code and a short,
truncated error text.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from msgspec import UNSET, Meta, UnsetType

from ..errors import ApiError, bad_request, not_found
from ..store import webhooks as webhooks_q
from ..store.db import Database
from ..store.ids import iso, utcnow
from ..webhooks import outbox
from ..webhooks.sender import url_problem
from .auth import AuthContext
from .common import Cursor, Limit, Out, Page, Struct, make_page

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
    chatbot_ids: ChatbotIds | None | UnsetType = UNSET
    description: Description | None | UnsetType = UNSET
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
        id=row["id"], url=row["url"], description=row["description"], events=row["events"],
        chatbot_ids=row["chatbot_ids"], enabled=row["enabled"], disabled_reason=row["disabled_reason"],
        disabled_at=iso(row["disabled_at"]), consecutive_failures=row["failure_streak"],
        last_success_at=iso(row["last_success_at"]),
        previous_secret_expires_at=iso(expires) if expires and expires > utcnow() else None,
        created_at=_ts(row["created_at"]), updated_at=_ts(row["updated_at"]), secret=secret,
    )


def delivery_out(row: dict[str, Any]) -> DeliveryOut:
    return DeliveryOut(
        id=row["id"], webhook_id=row["webhook_id"], event_id=row["event_id"], event_type=row["event_type"],
        status=row["status"],
        attempts=[
            AttemptOut(attempt=a["attempt"], attempted_at=_ts(a["attempted_at"]), status_code=a["status_code"],
                       latency_ms=a["latency_ms"], error=a["error"])
            for a in row["attempt_log"]
        ],
        next_attempt_at=iso(row["next_attempt_at"]) if row["status"] == "pending" else None,
        last_status_code=row["last_status_code"], last_error=row["last_error"],
        created_at=_ts(row["created_at"]), updated_at=_ts(row["updated_at"]),
    )


async def check_url(request: Request, url: str) -> str:
    allow_private = request.app.state.settings.webhook_allow_private
    problem = await asyncio.to_thread(url_problem, url, allow_private)
    if problem:
        raise bad_request(problem, field="url")
    return url


def check_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e not in outbox.EVENT_TYPES]
    if unknown:
        raise bad_request(
            f"unknown event type {unknown[0]!r}; known types: {', '.join(outbox.EVENT_TYPES)}.", field="events"
        )
    return list(dict.fromkeys(events))


def check_chatbots(cur: Any, org_id: str, chatbot_ids: list[str] | None) -> list[str] | None:
    if chatbot_ids is None:
        return None
    wanted = list(dict.fromkeys(chatbot_ids))
    found = webhooks_q.existing_chatbots(cur, org_id, wanted)
    missing = [b for b in wanted if b not in found]
    if missing:
        raise bad_request(f"chatbot {missing[0]} not found.", field="chatbotIds")
    return wanted


def _poke(request: Request) -> None:
    dispatcher = getattr(request.app.state, "webhooks", None)
    if dispatcher is not None:
        dispatcher.poke()


class WebhooksController(Controller):
    path = "/webhooks"
    tags = ["Webhooks"]  # noqa: RUF012 - declared by Litestar's Controller

    @get("/")
    async def list_webhooks(
        self, auth: AuthContext, db: Database, limit: Limit = 20, cursor: Cursor = None
    ) -> Page[WebhookOut]:
        auth.require_admin()
        rows, nxt = await db.aread(webhooks_q.page_webhooks, auth.org_id, limit, cursor)
        return make_page([webhook_out(r) for r in rows], nxt)

    @post("/", status_code=201)
    async def create_webhook(self, auth: AuthContext, db: Database, data: WebhookCreate, request: Request) -> WebhookOut:
        auth.require_admin()
        values = {"url": await check_url(request, data.url), "events": check_events(data.events),
                  "description": data.description}

        def create(cur: Any) -> dict[str, Any]:
            values["chatbot_ids"] = check_chatbots(cur, auth.org_id, data.chatbot_ids)
            return webhooks_q.create_webhook(cur, auth.org_id, values)

        row = await db.awrite(create)
        return webhook_out(row, secret=row["secret"])

    @get("/{webhook_id:str}")
    async def get_webhook(self, auth: AuthContext, db: Database, webhook_id: str) -> WebhookOut:
        auth.require_admin()
        row = await db.aread(webhooks_q.get_webhook, auth.org_id, webhook_id)
        if row is None:
            raise not_found("Webhook")
        return webhook_out(row)

    @patch("/{webhook_id:str}")
    async def update_webhook(
        self, auth: AuthContext, db: Database, webhook_id: str, data: WebhookPatch, request: Request
    ) -> WebhookOut:
        auth.require_admin()
        given = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not UNSET}
        if "url" in given:
            await check_url(request, given["url"])
        if "events" in given:
            given["events"] = check_events(given["events"])
        enabled = given.pop("enabled", None)

        def apply(cur: Any) -> dict[str, Any] | None:
            current = webhooks_q.get_webhook(cur, auth.org_id, webhook_id)
            if current is None:
                return None
            if "chatbot_ids" in given:
                given["chatbot_ids"] = check_chatbots(cur, auth.org_id, given["chatbot_ids"])
            if given:
                webhooks_q.update_webhook(cur, auth.org_id, webhook_id, given)
            if enabled is True and not current["enabled"]:
                webhooks_q.enable(cur, webhook_id)
            elif enabled is False and current["enabled"]:
                webhooks_q.disable(cur, webhook_id, "disabled by an administrator")
            return webhooks_q.get_webhook(cur, auth.org_id, webhook_id)

        row = await db.awrite(apply)
        if row is None:
            raise not_found("Webhook")
        return webhook_out(row)

    @delete("/{webhook_id:str}", status_code=204)
    async def delete_webhook(self, auth: AuthContext, db: Database, webhook_id: str) -> None:
        auth.require_admin()
        if not await db.awrite(webhooks_q.delete_webhook, auth.org_id, webhook_id):
            raise not_found("Webhook")

    @post("/{webhook_id:str}/test", status_code=202)
    async def test_webhook(self, auth: AuthContext, db: Database, webhook_id: str, request: Request) -> DeliveryOut:
        """Send a signed `webhook.test` event now, through the normal outbox and delivery path."""
        auth.require_admin()

        def send(cur: Any) -> dict[str, Any] | None:
            hook = webhooks_q.get_webhook(cur, auth.org_id, webhook_id)
            if hook is None:
                return None
            if not hook["enabled"]:
                raise _disabled(hook)
            _, delivery_id = outbox.emit_test(cur, hook)
            return webhooks_q.get_delivery(cur, auth.org_id, delivery_id)

        row = await db.awrite(send)
        if row is None:
            raise not_found("Webhook")
        _poke(request)
        return delivery_out(row)

    @post("/{webhook_id:str}/rotate-secret", status_code=200)
    async def rotate_secret(self, auth: AuthContext, db: Database, webhook_id: str) -> WebhookOut:
        """A new secret, shown once; the previous one keeps signing for 24 h (both signatures are sent)."""
        auth.require_admin()
        row = await db.awrite(webhooks_q.rotate_secret, auth.org_id, webhook_id)
        if row is None:
            raise not_found("Webhook")
        return webhook_out(row, secret=row["secret"])

    @get("/{webhook_id:str}/deliveries")
    async def list_deliveries(
        self, auth: AuthContext, db: Database, webhook_id: str, limit: Limit = 20, cursor: Cursor = None,
        status: DeliveryStatus | None = None,
    ) -> Page[DeliveryOut]:
        auth.require_admin()

        def read(cur: Any) -> tuple[list[dict[str, Any]], str | None] | None:
            if webhooks_q.get_webhook(cur, auth.org_id, webhook_id) is None:
                return None
            return webhooks_q.page_deliveries(cur, webhook_id, limit=limit, cursor=cursor, status=status)

        found = await db.aread(read)
        if found is None:
            raise not_found("Webhook")
        rows, nxt = found
        return make_page([delivery_out(r) for r in rows], nxt)


def _disabled(hook: dict[str, Any]) -> ApiError:
    return ApiError(
        409,
        f"The webhook is disabled ({hook.get('disabled_reason') or 'disabled'}); re-enable it with PATCH "
        '{"enabled": true} first.',
    )


class WebhookDeliveriesController(Controller):
    path = "/webhook-deliveries"
    tags = ["Webhooks"]  # noqa: RUF012 - declared by Litestar's Controller

    @get("/{delivery_id:str}")
    async def get_delivery(self, auth: AuthContext, db: Database, delivery_id: str) -> DeliveryOut:
        auth.require_admin()
        row = await db.aread(webhooks_q.get_delivery, auth.org_id, delivery_id)
        if row is None:
            raise not_found("Webhook delivery")
        return delivery_out(row)

    @post("/{delivery_id:str}/retry", status_code=202)
    async def retry_delivery(
        self, auth: AuthContext, db: Database, delivery_id: str, request: Request
    ) -> DeliveryOut:
        """Deliver again now (same event, same webhook-id), whatever the delivery's status."""
        auth.require_admin()

        def retry(cur: Any) -> dict[str, Any] | None:
            result = webhooks_q.retry_delivery(cur, auth.org_id, delivery_id)
            if result == "not_found":
                return None
            if result == "delivering":
                raise ApiError(409, "This delivery is being attempted right now; retry once it finishes.")
            if result == "disabled":
                row = webhooks_q.get_delivery(cur, auth.org_id, delivery_id)
                assert row is not None
                raise _disabled(webhooks_q.get_webhook(cur, auth.org_id, row["webhook_id"]) or {})
            return webhooks_q.get_delivery(cur, auth.org_id, delivery_id)

        row = await db.awrite(retry)
        if row is None:
            raise not_found("Webhook delivery")
        _poke(request)
        return delivery_out(row)
