"""create_app(settings) -> Litestar. The lifespan opens every resource and closes
it in reverse order; everything lives on app.state, nothing is global."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State

from helpfaster_box import __version__
from helpfaster_box.analytics.routes import AnalyticsController
from helpfaster_box.backup import control
from helpfaster_box.chat.routes import chat
from helpfaster_box.chatbots.routes import ChatbotsController
from helpfaster_box.conversations.routes import ConversationsController
from helpfaster_box.evaluations.routes import EvaluationsController
from helpfaster_box.keys.routes import DashboardSessionController, KeysController, PublishableKeysController
from helpfaster_box.knowledge.routes import SourcesController, add_source_handler
from helpfaster_box.leads.routes import LeadsController
from helpfaster_box.observability.metrics import Metrics
from helpfaster_box.organizations.routes import get_organization
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import open_database
from helpfaster_box.store.files import private_dir, private_umask
from helpfaster_box.web.assets import assets_router, load_assets
from helpfaster_box.web.auth import KeyCache, auth_middleware
from helpfaster_box.web.bodies import CheckedRequest
from helpfaster_box.web.control import backup as control_backup
from helpfaster_box.web.deps import DEPENDENCIES, resolve_in_turn
from helpfaster_box.web.docs import docs_assets_router, openapi_config, openapi_json
from helpfaster_box.web.errors import handle_exception
from helpfaster_box.web.health import health
from helpfaster_box.web.metrics import metrics_endpoint, register_gauges
from helpfaster_box.web.observe import observe
from helpfaster_box.web.ratelimit import RateLimiter
from helpfaster_box.webhooks.routes import WebhookDeliveriesController, WebhooksController

log = logging.getLogger("helpfaster_box")


async def open_models(app: Litestar, stack: AsyncExitStack, settings: Settings) -> None:
    """Embedder + knowledge engine, then the inference engine and the chat service; each
    in-process llama.cpp or an OpenAI-compatible server (llm/backends.py)."""
    from helpfaster_box.chat.service import ChatService
    from helpfaster_box.knowledge.ingestion import KnowledgeService
    from helpfaster_box.llm import backends

    embedder = await backends.open_embedder(settings)
    stack.callback(embedder.close)
    knowledge = KnowledgeService(settings, app.state.db, embedder, metrics=app.state.metrics)
    await asyncio.to_thread(knowledge.start)
    stack.callback(knowledge.close)
    app.state.embedder = embedder
    app.state.knowledge = knowledge
    app.state.readiness["embeddingModel"] = getattr(embedder, "readiness", lambda: "ok")
    app.state.on_chatbot_deleted.append(knowledge.chatbot_deleted)

    engine = await backends.open_chat_engine(settings)
    stack.push_async_callback(engine.aclose)
    app.state.engine = engine
    app.state.readiness["chatModel"] = backends.readiness(engine)
    app.state.chat = ChatService(settings, app.state.db, knowledge, engine, metrics=app.state.metrics)


V1_ROUTES: list[object] = [
    health,
    openapi_json,
    get_organization,
    KeysController,
    PublishableKeysController,
    DashboardSessionController,
    ChatbotsController,
    SourcesController,
    chat,
    ConversationsController,
    LeadsController,
    WebhooksController,
    WebhookDeliveriesController,
    AnalyticsController,
    EvaluationsController,
]


def create_app(settings: Settings) -> Litestar:
    key_cache = KeyCache()
    state = State(
        {
            "settings": settings,
            "key_cache": key_cache,
            "assets": load_assets(),  # the dashboard and widget files, read once
            "rate_limiter": RateLimiter(),
            "auth_failures": RateLimiter(),
            "readiness": {},
            "on_chatbot_deleted": [lambda _bot_id: key_cache.clear()],  # its widget keys are gone
            "knowledge": None,
            "chat": None,
            "webhooks": None,
            "topics": None,
            "evaluations": None,
            "metrics": Metrics(),
            "control_token": None,
        }
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from apscheduler.schedulers.background import BackgroundScheduler

        from helpfaster_box.analytics.jobs import TopicRefresher
        from helpfaster_box.evaluations.runner import EvaluationRunner
        from helpfaster_box.webhooks.delivery import WebhookDispatcher

        async with AsyncExitStack() as stack:
            stack.enter_context(private_umask())
            private_dir(settings.data_path)
            db = open_database(settings.db_path)
            stack.callback(db.close)
            app.state.db = db
            # One scheduler for every background job (webhook delivery, topics, evaluations), stopped
            # after the jobs' owners have removed their jobs and before the database closes.
            scheduler = BackgroundScheduler(timezone="UTC")
            scheduler.start()
            stack.callback(scheduler.shutdown, wait=True)
            webhooks = WebhookDispatcher(settings, db, scheduler=scheduler, metrics=app.state.metrics)
            await asyncio.to_thread(webhooks.start)
            stack.push_async_callback(asyncio.to_thread, webhooks.close)  # before db.close
            app.state.webhooks = webhooks
            if settings.load_models:
                await open_models(app, stack, settings)
            topics = TopicRefresher(settings, db, scheduler, app.state.get("embedder"))
            topics.start()
            stack.push_async_callback(asyncio.to_thread, topics.close)
            app.state.topics = topics
            evaluations = EvaluationRunner(db, scheduler, app.state.chat)
            evaluations.start()
            stack.push_async_callback(asyncio.to_thread, evaluations.close)  # before the engine closes
            app.state.evaluations = evaluations
            if app.state.knowledge is not None:  # an upload with evaluate: true re-runs the golden set
                app.state.knowledge.on_ingested.append(evaluations.source_ingested)
            token = control.write_control(settings.data_path, control.local_url(settings.host, settings.port))
            stack.callback(control.remove_control, settings.data_path, token)
            app.state.control_token = token
            yield

    v1 = Router(
        path="/v1",
        route_handlers=[*V1_ROUTES, add_source_handler(settings.max_upload_bytes)],  # type: ignore[list-item]
        middleware=[auth_middleware],
        dependencies=DEPENDENCIES,
    )
    extra: list[object] = [control_backup, *([metrics_endpoint] if settings.metrics_enabled else [])]
    app = Litestar(
        route_handlers=[v1, docs_assets_router(), assets_router(), *extra],  # type: ignore[list-item]
        lifespan=[lifespan],
        state=state,
        exception_handlers={Exception: handle_exception},
        openapi_config=openapi_config(__version__),
        request_max_body_size=settings.max_request_bytes,
        request_class=CheckedRequest,
        logging_config=None,
        debug=False,
    )
    register_gauges(app.state.metrics, app.state)
    resolve_in_turn(app)
    # Outermost: sees every response (404s and crashes included) with its final status, and
    # adds the security/CORS/rate-limit headers to each (web/headers.py).
    app.asgi_handler = observe(app.asgi_handler, app.state.metrics, settings.trusted_proxies)
    return app
