"""API keys (admin): list (prefix + name only), create (shown once), revoke.
Publishable widget keys of a chatbot (admin): the same three.
Dashboard sessions: sign in with an API key (an HttpOnly cookie + a CSRF token), read, sign out."""

from __future__ import annotations

import contextlib
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import CacheControlHeader, Cookie
from litestar.params import FromPath, JSONBody

from helpfaster_box.chatbots import service as chatbots
from helpfaster_box.errors import NotFound, Unauthorized
from helpfaster_box.keys import service
from helpfaster_box.keys.schemas import (
    KeyCreate,
    KeyOut,
    PublishableKeyCreate,
    PublishableKeyOut,
    SessionCreate,
    SessionOut,
)
from helpfaster_box.schemas import Page
from helpfaster_box.web.auth import (
    SESSION_COOKIE,
    admin_only,
    authenticate,
    authenticate_session,
    cookie,
    rate_limit,
)
from helpfaster_box.web.deps import Auth, Config, Db
from helpfaster_box.web.params import Cursor, Limit

# The answer carries a secret shown only this once: no cache or proxy may keep it.
SHOWN_ONCE = CacheControlHeader(no_store=True)


class KeysController(Controller):
    path = "/api-keys"
    tags = ["API keys"]  # noqa: RUF012 - declared by Litestar's Controller
    guards = [admin_only]  # noqa: RUF012

    @get("/")
    async def list_keys(self, auth: Auth, db: Db, limit: Limit = 20, cursor: Cursor = None) -> Page[KeyOut]:
        return await service.list_page(db, auth.org_id, limit, cursor)

    @post("/", status_code=201, cache_control=SHOWN_ONCE)
    async def create_key(self, request: Request, auth: Auth, db: Db, data: JSONBody[KeyCreate]) -> KeyOut:
        out = await service.create(db, auth.org_id, data.role, data.name)
        request.app.state.key_cache.clear()
        return out

    @delete("/{key_id:str}", status_code=204)
    async def revoke_key(self, request: Request, auth: Auth, db: Db, key_id: FromPath[str]) -> None:
        await service.revoke(db, auth.org_id, key_id)
        request.app.state.key_cache.clear()


class PublishableKeysController(Controller):
    """`hf_pub_` keys for the widget: each may chat with this one chatbot, from its origins."""

    path = "/chatbots/{bot_id:str}/publishable-keys"
    tags = ["Publishable keys"]  # noqa: RUF012
    guards = [admin_only]  # noqa: RUF012

    @get("/")
    async def list_publishable_keys(
        self, auth: Auth, db: Db, bot_id: FromPath[str], limit: Limit = 20, cursor: Cursor = None
    ) -> Page[PublishableKeyOut]:
        await chatbots.load(db, auth.org_id, bot_id)
        return await service.list_publishable(db, bot_id, limit, cursor)

    @post("/", status_code=201, cache_control=SHOWN_ONCE)
    async def create_publishable_key(
        self, auth: Auth, db: Db, bot_id: FromPath[str], data: JSONBody[PublishableKeyCreate]
    ) -> PublishableKeyOut:
        """`allowedOrigins` are `scheme://host[:port]`; the key is in the answer, once."""
        await chatbots.load(db, auth.org_id, bot_id)
        return await service.create_publishable(db, auth.org_id, bot_id, data)

    @delete("/{key_id:str}", status_code=204)
    async def revoke_publishable_key(
        self, request: Request, auth: Auth, db: Db, bot_id: FromPath[str], key_id: FromPath[str]
    ) -> None:
        await chatbots.load(db, auth.org_id, bot_id)
        await service.revoke_publishable(db, bot_id, key_id)
        request.app.state.key_cache.clear()


def _session_cookie(request: Request[Any, Any, Any], token: str) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=token,
        path="/v1",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


class DashboardSessionController(Controller):
    """The dashboard's sign-in. Not for API clients: they send `x-api-key` on every call."""

    path = "/dashboard/session"
    tags = ["Dashboard"]  # noqa: RUF012

    @post("/", status_code=201, security=[{}], cache_control=SHOWN_ONCE)
    async def sign_in(
        self, request: Request, db: Db, settings: Config, data: JSONBody[SessionCreate]
    ) -> Response[SessionOut]:
        """Exchange an API key for a session: sets the `hf_session` cookie (HttpOnly,
        SameSite=Strict, Secure over https); send `csrfToken` as `x-csrf-token` on writes."""
        state = request.app.state
        auth = await authenticate(state, data.api_key)
        rl_headers = rate_limit(state, auth.org_id, settings.rate_limit_for(auth.plan)).headers()
        out, token = await service.sign_in(db, settings, auth.key_id)
        return Response(out, status_code=201, cookies=[_session_cookie(request, token)], headers=rl_headers)

    @get("/", security=[{}], cache_control=SHOWN_ONCE, opt={"errors": (404,)})
    async def current_session(self, request: Request, db: Db, settings: Config) -> SessionOut:
        """The session of the cookie (with its CSRF token again); 404 when signed out."""
        token = cookie(dict(request.scope.get("headers") or []), SESSION_COOKIE)
        row = await service.live_session(db, settings, token) if token else None
        if row is None or token is None:
            raise NotFound("No dashboard session: sign in with an API key.")
        return service.session_out(row, token)

    @delete("/", status_code=204, security=[{}])
    async def sign_out(self, request: Request, db: Db) -> Response[None]:
        headers = dict(request.scope.get("headers") or [])
        token = cookie(headers, SESSION_COOKIE)
        if token:
            # A write: with a live session it needs the CSRF token; an ended one just goes.
            with contextlib.suppress(Unauthorized):
                await authenticate_session(request.app.state, token, "DELETE", headers)
            await service.sign_out(db, token)
        response: Response[None] = Response(None, status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/v1")
        return response
