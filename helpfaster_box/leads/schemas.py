"""Lead shapes, as GET returns them and the `lead.captured` webhook carries them."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, UnsetType

from helpfaster_box.conversations.schemas import ConversationOut
from helpfaster_box.schemas import Out
from helpfaster_box.store.ids import iso


class LeadOut(Out):
    id: str
    chatbot_id: str
    name: str | None
    email: str | None
    phone: str | None
    company: str | None
    conversation_ids: list[str]
    created_at: str
    updated_at: str
    conversations: list[ConversationOut] | UnsetType = UNSET  # GET /leads/{id} only


def lead_out(lead: dict[str, Any], conversation_ids: list[str]) -> LeadOut:
    return LeadOut(
        id=lead["id"],
        chatbot_id=lead["chatbot_id"],
        name=lead["name"],
        email=lead["email"],
        phone=lead["phone"],
        company=lead["company"],
        conversation_ids=conversation_ids,
        created_at=iso(lead["created_at"]),
        updated_at=iso(lead["updated_at"]),
    )
