"""Chatbot shapes: the settings objects, request bodies, the response, the stored bot.

The defaults of every chatbot setting live here and only here: a bot created with
no settings, a bot stored before a setting existed, and what the chat turn reads
all get them from these structs (stored JSON is decoded into them, never
re-defaulted with `.get(key, other)`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from helpfaster_box.schemas import Out, Struct

Name = Annotated[str, Meta(min_length=1, max_length=200)]
LongText = Annotated[str, Meta(max_length=20_000)]
Message = Annotated[str, Meta(min_length=1, max_length=2_000)]
Temperature = Annotated[float, Meta(ge=0, le=2)]
MaxTokens = Annotated[int, Meta(ge=1, le=4096)]
AnswerMode = Literal["grounded", "generative", "extractive"]
LeadField = Literal["name", "email", "phone", "company"]

DEFAULT_INSTRUCTIONS = "You are a helpful, concise support assistant."
DEFAULT_WELCOME = "Hi! How can I help you today?"
DEFAULT_FALLBACK = (
    "I'm sorry, I don't know the answer to that. Would you like me to connect you with a person "
    "from our team?"
)
DEFAULT_ESCALATION = "Thanks, I've passed this conversation to our team; a person will follow up here soon."
DEFAULT_TEMPERATURE = 0.2
DEFAULT_MAX_TOKENS = 256


class LeadCapture(Struct):
    """Off unless enabled; then ask for contact details after 3 visitor messages or on intent."""

    enabled: bool = False
    fields: list[LeadField] = msgspec.field(default_factory=lambda: ["name", "email"])
    ask_after_messages: Annotated[int, Meta(ge=0, le=100)] = 3
    on_intent: bool = True


class Escalation(Struct):
    """On: hand over when the visitor asks for a person, or after 2 unanswered in a row."""

    enabled: bool = True
    on_human_request: bool = True
    after_unanswered: Annotated[int, Meta(ge=0, le=100)] = 2


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
    instructions: LongText | UnsetType | None = UNSET
    welcome_message: Message | UnsetType | None = UNSET
    fallback_message: Message | UnsetType | None = UNSET
    escalation_message: Message | UnsetType | None = UNSET
    answer_mode: AnswerMode | UnsetType | None = UNSET
    temperature: Temperature | UnsetType | None = UNSET
    max_tokens: MaxTokens | UnsetType | None = UNSET
    lead_capture: LeadCapture | UnsetType | None = UNSET
    escalation: Escalation | UnsetType | None = UNSET


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


class ChatbotPublicOut(Out):
    """What a publishable (widget) key reads: what the widget shows, never the
    instructions (the system prompt) or the model settings."""

    id: str
    name: str
    welcome_message: str
    escalation_message: str
    lead_capture: LeadCapture
    escalation: Escalation


class Chatbot(msgspec.Struct, kw_only=True, frozen=True):
    """A stored chatbot as services read it: settings decoded into their structs."""

    id: str
    org_id: str
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
    created_at: datetime
    updated_at: datetime
