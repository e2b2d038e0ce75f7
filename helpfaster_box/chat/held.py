"""A visitor turn in an escalated conversation: a person has it, so the bot stays quiet.

The visitor's message is stored (with its vector, for topics and gaps) and sent as
`message.sent`, for the person handling the conversation to read; no bot reply is
generated or stored. The chat reply says so: `reply` is empty, `escalated` true,
`answered` false, no sources, and `messageId` is the visitor's stored message.
The bot answers again once the conversation is handed back (or resolved and reopened).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from helpfaster_box.chat.schemas import ChatReply
from helpfaster_box.chatbots import queries as bots_q
from helpfaster_box.conversations import queries as conv_q
from helpfaster_box.conversations.schemas import message_event
from helpfaster_box.conversations.service import emit
from helpfaster_box.errors import NotFound
from helpfaster_box.store.db import Database


async def store_held_turn(
    db: Database,
    org_id: str,
    bot_id: str,
    conv_id: str,
    message: str,
    visitor: dict[str, Any] | None,
    metadata: dict[str, Any] | None,
    vector: np.ndarray | None,
) -> ChatReply:
    def write(cur: Any) -> dict[str, Any]:
        if not bots_q.exists(cur, org_id, bot_id):
            raise NotFound.of("Chatbot")
        conv = conv_q.get_conversation(cur, org_id, conv_id)
        if conv is None:
            raise NotFound.of("Conversation")
        fields = {"role": "user", "content": message, "visitor": visitor, "metadata": metadata}
        user = conv_q.add_message(cur, conv, fields, vector)
        emit(cur, conv, "message.sent", message_event(conv, user))
        return user

    user = await db.awrite(write)
    return ChatReply(
        reply="",
        sources=[],
        conversation_id=conv_id,
        message_id=user["id"],
        escalated=True,
        answered=False,
    )
