"""Dependency providers: what a route handler may ask for by name.

Declared once on the `/v1` router (see app.py); a handler names `auth`, `db`,
`settings`, `knowledge`, `chat`, `webhooks`, `topics` or `evaluations` as a parameter and gets it. A
service that is not running (models not loaded) is a 503 `unavailable`.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request
from litestar.di import NamedDependency, Provide
from litestar.routes import HTTPRoute

from helpfaster_box.analytics.jobs import TopicRefresher
from helpfaster_box.chat.service import ChatService
from helpfaster_box.errors import Unauthorized
from helpfaster_box.evaluations.runner import EvaluationRunner
from helpfaster_box.knowledge.ingestion import KnowledgeService
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import Database
from helpfaster_box.web.auth import AuthContext
from helpfaster_box.webhooks.delivery import WebhookDispatcher


async def provide_auth(request: Request[Any, Any, Any]) -> AuthContext:
    auth = request.state.get("auth")
    if auth is None:  # the auth middleware sets it on every /v1 route; guard anyway
        raise Unauthorized()
    return auth


async def provide_db(request: Request[Any, Any, Any]) -> Database:
    return request.app.state.db


async def provide_settings(request: Request[Any, Any, Any]) -> Settings:
    return request.app.state.settings


async def provide_knowledge(request: Request[Any, Any, Any]) -> KnowledgeService | None:
    """None while the embedding model is not loaded: the feature says what that means."""
    return request.app.state.knowledge


async def provide_chat(request: Request[Any, Any, Any]) -> ChatService | None:
    return request.app.state.chat


async def provide_webhooks(request: Request[Any, Any, Any]) -> WebhookDispatcher | None:
    return request.app.state.webhooks


async def provide_topics(request: Request[Any, Any, Any]) -> TopicRefresher | None:
    return request.app.state.topics


async def provide_evaluations(request: Request[Any, Any, Any]) -> EvaluationRunner | None:
    return request.app.state.evaluations


# What handlers annotate their parameters with (Litestar injects by name).
Auth = NamedDependency[AuthContext]
Db = NamedDependency[Database]
Config = NamedDependency[Settings]
Knowledge = NamedDependency[KnowledgeService | None]
Chat = NamedDependency[ChatService | None]
Webhooks = NamedDependency[WebhookDispatcher | None]
Topics = NamedDependency[TopicRefresher | None]
Evaluations = NamedDependency[EvaluationRunner | None]

DEPENDENCIES = {
    "auth": Provide(provide_auth),
    "db": Provide(provide_db),
    "settings": Provide(provide_settings),
    "knowledge": Provide(provide_knowledge),
    "chat": Provide(provide_chat),
    "webhooks": Provide(provide_webhooks),
    "topics": Provide(provide_topics),
    "evaluations": Provide(provide_evaluations),
}


def resolve_in_turn(app: Litestar) -> None:
    """Resolve each route's dependencies one after another instead of in an anyio task group.

    Litestar resolves independent dependencies (`auth` and `db` of most handlers) in one
    batch, concurrently, in a task group: a task per dependency, cancel scopes, and the
    async-library lookup, on every request. Every provider here is an attribute read that
    never awaits anything, so concurrency buys nothing; the task group cost ~10 % of the
    CPU of `GET /v1/chatbots` (py-spy, bench_http). Splitting each batch into batches of
    one keeps Litestar's order (a batch after the ones it depends on) and makes it await
    each provider directly. It sets `KwargsModel.dependency_batches` (Litestar 2.x; a
    test checks it holds, so an upgrade that renames it fails there, not in production).
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for _handler, kwargs_model in route.route_handler_map.values():
            batches = getattr(kwargs_model, "dependency_batches", None)
            if batches and any(len(batch) > 1 for batch in batches):
                kwargs_model.dependency_batches = [{dep} for batch in batches for dep in batch]
