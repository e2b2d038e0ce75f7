"""Chatbots: list, create, read, partial update, delete with all their data."""

from __future__ import annotations

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from helpfaster_box.chatbots import service
from helpfaster_box.chatbots.schemas import ChatbotCreate, ChatbotOut, ChatbotPatch, ChatbotPublicOut
from helpfaster_box.schemas import Page
from helpfaster_box.web.deps import Auth, Config, Db
from helpfaster_box.web.params import Cursor, Limit


class ChatbotsController(Controller):
    path = "/chatbots"
    tags = ["Chatbots"]  # noqa: RUF012 - declared by Litestar's Controller

    @get("/")
    async def list_chatbots(
        self, auth: Auth, db: Db, limit: Limit = 20, cursor: Cursor = None
    ) -> Page[ChatbotOut]:
        return await service.list_page(db, auth.org_id, limit, cursor)

    @post("/", status_code=201)
    async def create_chatbot(
        self, auth: Auth, db: Db, settings: Config, data: JSONBody[ChatbotCreate]
    ) -> ChatbotOut:
        return await service.create(db, settings, auth.org_id, data)

    @get("/{bot_id:str}")
    async def get_chatbot(self, auth: Auth, db: Db, bot_id: FromPath[str]) -> ChatbotOut | ChatbotPublicOut:
        """The chatbot; with a publishable (widget) key only its public view
        (id, name, welcomeMessage, escalationMessage, leadCapture, escalation)."""
        bot = await service.load(db, auth.org_id, bot_id)
        return service.public_out(bot) if auth.publishable_key_id else service.chatbot_out(bot)

    @patch("/{bot_id:str}")
    async def update_chatbot(
        self, auth: Auth, db: Db, settings: Config, bot_id: FromPath[str], data: JSONBody[ChatbotPatch]
    ) -> ChatbotOut:
        return await service.update(db, settings, auth.org_id, bot_id, data)

    @delete("/{bot_id:str}", status_code=204)
    async def delete_chatbot(self, request: Request, auth: Auth, db: Db, bot_id: FromPath[str]) -> None:
        await service.delete(db, auth.org_id, bot_id, request.app.state.on_chatbot_deleted)
