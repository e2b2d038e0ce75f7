"""create_app(settings) -> Litestar. The lifespan opens every resource and closes
it in reverse order; everything lives on app.state, nothing is global."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide

from . import __version__
from .api.auth import KeyCache, auth_middleware
from .api.chatbots import ChatbotsController
from .api.common import provide_auth, provide_db
from .api.docs import docs_assets_router, openapi_config, openapi_json
from .api.health import get_organization, health
from .api.keys import KeysController
from .api.ratelimit import RateLimiter
from .errors import handle_exception
from .settings import Settings
from .store.db import open_database

log = logging.getLogger("helpfaster_box")


def create_app(settings: Settings) -> Litestar:
    state = State(
        {
            "settings": settings,
            "key_cache": KeyCache(),
            "rate_limiter": RateLimiter(),
            "readiness": {},
            "usage_tables": [("chatbots", "SELECT count(*) FROM chatbots WHERE org_id = ?")],
            "on_chatbot_deleted": [],
        }
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            settings.data_path.mkdir(parents=True, exist_ok=True)
            db = open_database(settings.db_path)
            stack.callback(db.close)
            app.state.db = db
            yield

    v1 = Router(
        path="/v1",
        route_handlers=[health, openapi_json, get_organization, KeysController, ChatbotsController],
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
