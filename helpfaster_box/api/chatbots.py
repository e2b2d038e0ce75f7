"""Chatbots: list, create, read, partial update, delete with all their data."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from msgspec import UNSET, Meta, UnsetType

from ..errors import not_found
from ..store import chatbots as bots_q
from ..store.db import Database
from ..store.ids import iso
from .auth import AuthContext
from .common import Cursor, Limit, Out, Page, Struct, make_page

Name = Annotated[str, Meta(min_length=1, max_length=200)]
LongText = Annotated[str, Meta(max_length=20_000)]
Message = Annotated[str, Meta(min_length=1, max_length=2_000)]
Temperature = Annotated[float, Meta(ge=0, le=2)]
MaxTokens = Annotated[int, Meta(ge=1, le=4096)]
AnswerMode = Literal["grounded", "generative", "extractive"]
LeadField = Literal["name", "email", "phone", "company"]

DEFAULT_FALLBACK = (
    "I'm sorry, I don't know the answer to that. Would you like me to connect you with a person "
    "from our team?"
)
DEFAULT_ESCALATION = "Thanks, I've passed this conversation to our team; a person will follow up here soon."


class LeadCapture(Struct):
    enabled: bool = False
    fields: list[LeadField] = msgspec.field(default_factory=lambda: ["name", "email"])
    ask_after_messages: Annotated[int, Meta(ge=0, le=100)] = 3
    on_intent: bool = True


class Escalation(Struct):
    enabled: bool = True
    on_human_request: bool = True
    after_unanswered: Annotated[int, Meta(ge=0, le=100)] = 2


DEFAULTS: dict[str, Any] = {
    "instructions": "You are a helpful, concise support assistant.",
    "welcome_message": "Hi! How can I help you today?",
    "fallback_message": DEFAULT_FALLBACK,
    "escalation_message": DEFAULT_ESCALATION,
    "temperature": 0.2,
    "max_tokens": 256,
}


class ChatbotCreate(Struct):
    name: Name
    instructions: LongText | None = None
    welcome_message: Message | None = None
    fallback_message: Message | None = None
    escalation_message: Message | None = None
    answer_mode: AnswerMode | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    lead_capture: LeadCapture | None = None
    escalation: Escalation | None = None


class ChatbotPatch(Struct):
    """Absent = unchanged; null = reset to the default."""

    name: Name | UnsetType = UNSET
    instructions: LongText | None | UnsetType = UNSET
    welcome_message: Message | None | UnsetType = UNSET
    fallback_message: Message | None | UnsetType = UNSET
    escalation_message: Message | None | UnsetType = UNSET
    answer_mode: AnswerMode | None | UnsetType = UNSET
    temperature: Temperature | None | UnsetType = UNSET
    max_tokens: MaxTokens | None | UnsetType = UNSET
    lead_capture: LeadCapture | None | UnsetType = UNSET
    escalation: Escalation | None | UnsetType = UNSET


class ChatbotOut(Out):
    id: str
    name: str
    instructions: str
    welcome_message: str
    fallback_message: str
    escalation_message: str
    answer_mode: str
    temperature: float
    max_tokens: int
    lead_capture: LeadCapture
    escalation: Escalation
    created_at: str
    updated_at: str


def _value(field: str, value: Any, settings: Any) -> Any:
    """The stored value for a field given in a request (None = default)."""
    if field == "lead_capture":
        return msgspec.to_builtins(value or LeadCapture())
    if field == "escalation":
        return msgspec.to_builtins(value or Escalation())
    if value is not None:
        return value
    return settings.default_answer_mode if field == "answer_mode" else DEFAULTS[field]


def chatbot_out(row: dict[str, Any]) -> ChatbotOut:
    escalation = dict(row["escalation"])
    escalation_message = escalation.pop("message", DEFAULT_ESCALATION)
    return ChatbotOut(
        id=row["id"],
        name=row["name"],
        instructions=row["instructions"],
        welcome_message=row["welcome_message"],
        fallback_message=row["fallback_message"],
        escalation_message=escalation_message,
        answer_mode=row["answer_mode"],
        temperature=row["temperature"],
        max_tokens=row["max_tokens"],
        lead_capture=msgspec.convert(row["lead_capture"], LeadCapture),
        escalation=msgspec.convert(escalation, Escalation),
        created_at=iso(row["created_at"]),
        updated_at=iso(row["updated_at"]),
    )


def _to_columns(values: dict[str, Any], current_escalation: dict[str, Any] | None) -> dict[str, Any]:
    """Map API fields to columns; escalationMessage lives inside the escalation JSON."""
    cols = {k: v for k, v in values.items() if k != "escalation_message"}
    if "escalation" in values or "escalation_message" in values:
        esc = dict(current_escalation or {})
        if "escalation" in values:
            esc = {**values["escalation"], "message": esc.get("message", DEFAULT_ESCALATION)}
        if "escalation_message" in values:
            esc["message"] = values["escalation_message"]
        cols["escalation"] = esc
    return cols


async def load_chatbot(db: Database, auth: AuthContext, bot_id: str) -> dict[str, Any]:
    row = await db.aread_cached(("chatbot", auth.org_id, bot_id), bots_q.get_chatbot, auth.org_id, bot_id)
    if row is None:
        raise not_found("Chatbot")
    return row


class ChatbotsController(Controller):
    path = "/chatbots"
    tags = ["Chatbots"]  # noqa: RUF012 - declared by Litestar's Controller

    @get("/")
    async def list_chatbots(
        self, auth: AuthContext, db: Database, limit: Limit = 20, cursor: Cursor = None
    ) -> Page[ChatbotOut]:
        def load(cur: Any) -> Page[ChatbotOut]:
            rows, nxt = bots_q.list_chatbots(cur, auth.org_id, limit=limit, cursor=cursor)
            return make_page([chatbot_out(r) for r in rows], nxt)

        return await db.aread_cached(("chatbots", auth.org_id, limit, cursor), load)

    @post("/", status_code=201)
    async def create_chatbot(
        self, request: Request, auth: AuthContext, db: Database, data: ChatbotCreate
    ) -> ChatbotOut:
        given = msgspec.structs.asdict(data)
        settings = request.app.state.settings
        values = {k: _value(k, v, settings) for k, v in given.items() if k != "name"}
        values["name"] = data.name
        cols = _to_columns(values, None)
        row = await db.awrite(bots_q.create_chatbot, auth.org_id, cols)
        return chatbot_out(row)

    @get("/{bot_id:str}")
    async def get_chatbot(self, auth: AuthContext, db: Database, bot_id: str) -> ChatbotOut:
        return chatbot_out(await load_chatbot(db, auth, bot_id))

    @patch("/{bot_id:str}")
    async def update_chatbot(
        self, request: Request, auth: AuthContext, db: Database, bot_id: str, data: ChatbotPatch
    ) -> ChatbotOut:
        given = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not UNSET}
        settings = request.app.state.settings
        values = {k: (v if k == "name" else _value(k, v, settings)) for k, v in given.items()}

        def apply(cur):
            current = bots_q.get_chatbot(cur, auth.org_id, bot_id)
            if current is None:
                return None
            return bots_q.update_chatbot(cur, auth.org_id, bot_id, _to_columns(values, current["escalation"]))

        row = await db.awrite(apply)
        if row is None:
            raise not_found("Chatbot")
        return chatbot_out(row)

    @delete("/{bot_id:str}", status_code=204)
    async def delete_chatbot(self, auth: AuthContext, db: Database, bot_id: str, request: Request) -> None:
        if not await db.awrite(bots_q.delete_chatbot, auth.org_id, bot_id):
            raise not_found("Chatbot")
        for hook in request.app.state.on_chatbot_deleted:
            hook(bot_id)
