"""create_app(settings) -> Litestar. The lifespan opens every resource and closes
it in reverse order; everything lives on app.state, nothing is global."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide

from . import __version__
from .api.auth import KeyCache, auth_middleware
from .api.chat import chat
from .api.chatbots import ChatbotsController
from .api.common import provide_auth, provide_db
from .api.conversations import ConversationsController
from .api.docs import docs_assets_router, openapi_config, openapi_json
from .api.health import get_organization, health
from .api.keys import KeysController
from .api.leads import LeadsController
from .api.ratelimit import RateLimiter
from .api.sources import SourcesController, add_source_handler
from .api.webhooks import WebhookDeliveriesController, WebhooksController
from .errors import handle_exception
from .settings import Settings
from .store.db import open_database

log = logging.getLogger("helpfaster_box")


def resolve_model(settings: Settings, role: str) -> Path:
    """The configured model file for a role: an explicit setting, else models_dir's active one."""
    from .models import active_model_path

    explicit = settings.chat_model if role == "chat" else settings.embedding_model
    return Path(explicit).expanduser() if explicit else active_model_path(settings.models_dir, role)


async def open_models(app: Litestar, stack: AsyncExitStack, settings: Settings) -> None:
    """Embedder + knowledge service (and, later, the inference engine)."""
    from .knowledge.service import KnowledgeService
    from .llm.embedder import Embedder

    embedding_path = resolve_model(settings, "embedding")
    embedder = await asyncio.to_thread(Embedder, str(embedding_path), settings.llm_threads or None)
    stack.callback(embedder.close)
    knowledge = KnowledgeService(settings, app.state.db, embedder)
    await asyncio.to_thread(knowledge.start)
    stack.callback(knowledge.close)
    app.state.embedder = embedder
    app.state.knowledge = knowledge
    app.state.readiness["embeddingModel"] = lambda: "ok"
    app.state.on_chatbot_deleted.append(knowledge.chatbot_deleted)

    from .chat import ChatService
    from .llm.engine import InferenceEngine

    engine = InferenceEngine(
        str(resolve_model(settings, "chat")),
        n_ctx=settings.llm_context_size,
        n_threads=settings.llm_threads or None,
        n_threads_decode=settings.llm_decode_threads or None,
        max_sequences=settings.llm_max_sequences,
        queue_size=settings.llm_queue_size,
        timeout_s=settings.llm_timeout_s,
    )
    await asyncio.to_thread(engine.start)
    stack.push_async_callback(engine.aclose)
    app.state.engine = engine
    app.state.readiness["chatModel"] = lambda: "ok" if engine.status()["running"] else "stopped"
    app.state.chat = ChatService(settings, app.state.db, knowledge, engine)


def create_app(settings: Settings) -> Litestar:
    state = State(
        {
            "settings": settings,
            "key_cache": KeyCache(),
            "rate_limiter": RateLimiter(),
            "readiness": {},
            "usage_tables": [
                ("chatbots", "SELECT count(*) FROM chatbots WHERE org_id = ?"),
                ("sources", "SELECT count(*) FROM sources WHERE org_id = ?"),
                ("conversations", "SELECT count(*) FROM conversations WHERE org_id = ?"),
                ("leads", "SELECT count(*) FROM leads WHERE org_id = ?"),
            ],
            "on_chatbot_deleted": [],
            "knowledge": None,
            "chat": None,
            "webhooks": None,
        }
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            settings.data_path.mkdir(parents=True, exist_ok=True)
            db = open_database(settings.db_path)
            stack.callback(db.close)
            app.state.db = db
            from .webhooks.delivery import WebhookDispatcher

            webhooks = WebhookDispatcher(settings, db)
            await asyncio.to_thread(webhooks.start)
            stack.push_async_callback(asyncio.to_thread, webhooks.close)  # before db.close
            app.state.webhooks = webhooks
            if settings.load_models:
                await open_models(app, stack, settings)
            yield

    v1 = Router(
        path="/v1",
        route_handlers=[health, openapi_json, get_organization, KeysController, ChatbotsController,
                        SourcesController, add_source_handler(settings.max_upload_bytes),
                        chat, ConversationsController, LeadsController, WebhooksController,
                        WebhookDeliveriesController],
        middleware=[auth_middleware],
        dependencies={"auth": Provide(provide_auth), "db": Provide(provide_db)},
    )
    return Litestar(
        route_handlers=[v1, docs_assets_router()],
        lifespan=[lifespan],
        state=state,
        exception_handlers={Exception: handle_exception},
        openapi_config=openapi_config(__version__),
        request_max_body_size=settings.max_request_bytes,
        logging_config=None,
        debug=False,
    )
