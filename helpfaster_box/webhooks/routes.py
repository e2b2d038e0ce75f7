"""Webhook endpoints (admin only): CRUD, test event, secret rotation, delivery log, retry.

URL policy (helpfaster_box.net): only http:// and https://, no credentials in the
URL. Whether loopback, private and link-local addresses are allowed is the setting
`webhook_allow_private`, default false: the box hosts several organizations, and
any org admin could otherwise use deliveries to probe the intranet. Metadata,
unspecified and multicast addresses are refused either way. The host is resolved
at creation and again for every new connection, which goes to the address just
checked. Receivers' answers are never shown beyond the status code and a short,
truncated error text; a private receiver's not even that.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import UNSET

from helpfaster_box.errors import Conflict, Invalid, NotFound, Unavailable
from helpfaster_box.schemas import Page, make_page
from helpfaster_box.store.secretbox import SecretBox
from helpfaster_box.web.auth import admin_only
from helpfaster_box.web.deps import Auth, Config, Db, Webhooks
from helpfaster_box.web.params import Cursor, Limit
from helpfaster_box.webhooks import outbox
from helpfaster_box.webhooks import queries as webhooks_q
from helpfaster_box.webhooks.delivery import WebhookDispatcher
from helpfaster_box.webhooks.schemas import (
    DeliveryOut,
    DeliveryStatus,
    WebhookCreate,
    WebhookOut,
    WebhookPatch,
    delivery_out,
    webhook_out,
)
from helpfaster_box.webhooks.sender import url_problem

# The answer carries a secret shown only this once: no cache or proxy may keep it.
SHOWN_ONCE = CacheControlHeader(no_store=True)


async def check_url(settings: Config, url: str) -> str:
    problem = await asyncio.to_thread(url_problem, url, settings.webhook_allow_private)
    if problem:
        raise Invalid(problem, field="url")
    return url


def check_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e not in outbox.EVENT_TYPES]
    if unknown:
        raise Invalid(
            f"unknown event type {unknown[0]!r}; known types: {', '.join(outbox.EVENT_TYPES)}.",
            field="events",
        )
    return list(dict.fromkeys(events))


def check_chatbots(cur: Any, org_id: str, chatbot_ids: list[str] | None) -> list[str] | None:
    if chatbot_ids is None:
        return None
    wanted = list(dict.fromkeys(chatbot_ids))
    found = webhooks_q.existing_chatbots(cur, org_id, wanted)
    missing = [b for b in wanted if b not in found]
    if missing:
        raise Invalid(f"chatbot {missing[0]} not found.", field="chatbotIds")
    return wanted


def _box(dispatcher: WebhookDispatcher | None) -> SecretBox:
    if dispatcher is None:
        raise Unavailable("Webhook delivery is not running.")
    return dispatcher.box


def _poke(dispatcher: WebhookDispatcher | None) -> None:
    if dispatcher is not None:
        dispatcher.poke()


class WebhooksController(Controller):
    path = "/webhooks"
    tags = ["Webhooks"]  # noqa: RUF012 - declared by Litestar's Controller
    guards = [admin_only]  # noqa: RUF012

    @get("/")
    async def list_webhooks(
        self, auth: Auth, db: Db, limit: Limit = 20, cursor: Cursor = None
    ) -> Page[WebhookOut]:
        rows, nxt = await db.aread(webhooks_q.page_webhooks, auth.org_id, limit, cursor)
        return make_page([webhook_out(r) for r in rows], nxt)

    @post("/", status_code=201, cache_control=SHOWN_ONCE)
    async def create_webhook(
        self, auth: Auth, db: Db, data: JSONBody[WebhookCreate], settings: Config, webhooks: Webhooks
    ) -> WebhookOut:
        values = {
            "url": await check_url(settings, data.url),
            "events": check_events(data.events),
            "description": data.description,
        }

        def create(cur: Any) -> dict[str, Any]:
            values["chatbot_ids"] = check_chatbots(cur, auth.org_id, data.chatbot_ids)
            return webhooks_q.create_webhook(cur, auth.org_id, values, _box(webhooks))

        row = await db.awrite(create)
        return webhook_out(row, secret=row["secret"])

    @get("/{webhook_id:str}")
    async def get_webhook(self, auth: Auth, db: Db, webhook_id: FromPath[str]) -> WebhookOut:
        row = await db.aread(webhooks_q.get_webhook, auth.org_id, webhook_id)
        if row is None:
            raise NotFound.of("Webhook")
        return webhook_out(row)

    @patch("/{webhook_id:str}")
    async def update_webhook(
        self, auth: Auth, db: Db, settings: Config, webhook_id: FromPath[str], data: JSONBody[WebhookPatch]
    ) -> WebhookOut:
        given = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not UNSET}
        if "url" in given:
            await check_url(settings, given["url"])
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
            raise NotFound.of("Webhook")
        return webhook_out(row)

    @delete("/{webhook_id:str}", status_code=204)
    async def delete_webhook(self, auth: Auth, db: Db, webhook_id: FromPath[str]) -> None:
        if not await db.awrite(webhooks_q.delete_webhook, auth.org_id, webhook_id):
            raise NotFound.of("Webhook")

    @post("/{webhook_id:str}/test", status_code=202, opt={"errors": (409,)})
    async def test_webhook(
        self, auth: Auth, db: Db, webhook_id: FromPath[str], webhooks: Webhooks
    ) -> DeliveryOut:
        """Send a signed `webhook.test` event now, through the normal outbox and delivery path."""

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
            raise NotFound.of("Webhook")
        _poke(webhooks)
        return delivery_out(row)

    @post("/{webhook_id:str}/rotate-secret", status_code=200, cache_control=SHOWN_ONCE)
    async def rotate_secret(
        self, auth: Auth, db: Db, webhook_id: FromPath[str], webhooks: Webhooks
    ) -> WebhookOut:
        """A new secret, shown once; the previous one keeps signing for 24 h (both signatures are sent)."""
        row = await db.awrite(webhooks_q.rotate_secret, auth.org_id, webhook_id, _box(webhooks))
        if row is None:
            raise NotFound.of("Webhook")
        return webhook_out(row, secret=row["secret"])

    @get("/{webhook_id:str}/deliveries")
    async def list_deliveries(
        self,
        auth: Auth,
        db: Db,
        webhook_id: FromPath[str],
        limit: Limit = 20,
        cursor: Cursor = None,
        status: FromQuery[DeliveryStatus | None] = None,
    ) -> Page[DeliveryOut]:
        def read(cur: Any) -> tuple[list[dict[str, Any]], str | None] | None:
            if webhooks_q.get_webhook(cur, auth.org_id, webhook_id) is None:
                return None
            return webhooks_q.page_deliveries(cur, webhook_id, limit=limit, cursor=cursor, status=status)

        found = await db.aread(read)
        if found is None:
            raise NotFound.of("Webhook")
        rows, nxt = found
        return make_page([delivery_out(r) for r in rows], nxt)


def _disabled(hook: dict[str, Any]) -> Conflict:
    return Conflict(
        f"The webhook is disabled ({hook.get('disabled_reason') or 'disabled'}); re-enable it with PATCH "
        '{"enabled": true} first.',
    )


class WebhookDeliveriesController(Controller):
    path = "/webhook-deliveries"
    tags = ["Webhooks"]  # noqa: RUF012 - declared by Litestar's Controller
    guards = [admin_only]  # noqa: RUF012

    @get("/{delivery_id:str}")
    async def get_delivery(self, auth: Auth, db: Db, delivery_id: FromPath[str]) -> DeliveryOut:
        row = await db.aread(webhooks_q.get_delivery, auth.org_id, delivery_id)
        if row is None:
            raise NotFound.of("Webhook delivery")
        return delivery_out(row)

    @post("/{delivery_id:str}/retry", status_code=202, opt={"errors": (409,)})
    async def retry_delivery(
        self, auth: Auth, db: Db, delivery_id: FromPath[str], webhooks: Webhooks
    ) -> DeliveryOut:
        """Deliver again now (same event, same webhook-id), whatever the delivery's status."""

        def retry(cur: Any) -> dict[str, Any] | None:
            result = webhooks_q.retry_delivery(cur, auth.org_id, delivery_id)
            if result == "not_found":
                return None
            if result == "delivering":
                raise Conflict("This delivery is being attempted right now; retry once it finishes.")
            if result == "disabled":
                row = webhooks_q.get_delivery(cur, auth.org_id, delivery_id)
                assert row is not None
                raise _disabled(webhooks_q.get_webhook(cur, auth.org_id, row["webhook_id"]) or {})
            return webhooks_q.get_delivery(cur, auth.org_id, delivery_id)

        row = await db.awrite(retry)
        if row is None:
            raise NotFound.of("Webhook delivery")
        _poke(webhooks)
        return delivery_out(row)
