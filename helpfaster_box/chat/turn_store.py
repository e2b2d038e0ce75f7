"""A chat turn's reads and writes: the conversation it continues, and the one
transaction that records it.

Kept apart from the turn's logic (service.py: retrieve, gate, compose) because the
write is where a turn meets every other feature: the question and reply messages,
a lead captured from the visitor's words, an automatic escalation, and their
webhook events, all committed together or not at all, after re-reading the
conversation (another turn of it may have committed meanwhile). A turn while a
person has the conversation is held.py.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from helpfaster_box.chat import answers
from helpfaster_box.chat.compose import Composed
from helpfaster_box.chat.schemas import ChatInput, ChatReply
from helpfaster_box.chatbots import queries as bots_q
from helpfaster_box.chatbots.schemas import Chatbot
from helpfaster_box.conversations import queries as conv_q
from helpfaster_box.conversations.schemas import SourceRef, conversation_out, message_event
from helpfaster_box.conversations.service import emit, escalate_in, visible
from helpfaster_box.errors import NotFound
from helpfaster_box.knowledge import queries as src_q
from helpfaster_box.knowledge.ingestion import Hit, KnowledgeService
from helpfaster_box.leads import escalation
from helpfaster_box.leads import service as leads
from helpfaster_box.store.db import Database
from helpfaster_box.webhooks import outbox

HISTORY_TURNS = 4


def sources_of(hits: list[Hit], c: Composed) -> list[SourceRef]:
    """The passages the reply used, one per source, most relevant first. A source two
    of whose passages the reply quotes gets both their snippets, a blank line apart, so
    each quote can be checked in it."""
    hits = c.passages if c.passages is not None else hits
    parts: dict[str, list[int]] = {}
    for i in c.used:
        if i < len(hits):
            parts.setdefault(hits[i].source_id, []).append(i)
    return [
        SourceRef(
            title=hits[used[0]].title,
            url=hits[used[0]].url,
            snippet=answers.SOURCE_BREAK.join(
                answers.snippet(hits[i].text, c.focus.get(i, [])) for i in used
            ),
            source_id=source_id,
        )
        for source_id, used in parts.items()
    ]


class TurnStore:
    def __init__(self, db: Database, knowledge: KnowledgeService | None) -> None:
        self.db = db
        self.knowledge = knowledge

    async def conversation(
        self, org_id: str, bot: Chatbot, req: ChatInput
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        conv_id = req.conversation_id
        if conv_id is None:
            return None, []

        def load(cur: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
            conv = conv_q.get_conversation(cur, org_id, conv_id)
            if conv is None or conv["chatbot_id"] != bot.id or not visible(conv, req.publishable_key_id):
                return None, []
            return conv, conv_q.recent_messages(cur, conv["id"], HISTORY_TURNS)

        conv, history = await self.db.aread(load)
        if conv is None:
            raise NotFound.of("Conversation")
        return conv, history

    @staticmethod
    def _reply_fields(c: Composed, reply: str, sources: list[SourceRef], latency_ms: int) -> dict[str, Any]:
        return {
            "role": "assistant",
            "content": reply,
            "sources": [msgspec.to_builtins(s) for s in sources],
            "answered": c.answered,
            "answer_mode": c.mode,
            "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens,
            "latency_ms": latency_ms,
            "ttft_ms": c.ttft_ms,
            "confidence": c.confidence,
            "decline_reason": None if c.answered else c.decline_reason,
        }

    async def store(
        self,
        org_id: str,
        bot: Chatbot,
        conv: dict[str, Any] | None,
        req: ChatInput,
        hits: list[Hit],
        c: Composed,
        latency_ms: int,
        qvec: np.ndarray | None,
    ) -> ChatReply:
        """Write the turn, its lead, its escalation and their webhook events in one transaction."""
        sources = sources_of(hits, c) if c.answered else []
        reply = c.reply
        details = leads.details_of(bot.lead_capture, req.visitor, req.message)
        bot_id = bot.id

        def write(cur: Any) -> tuple[dict[str, Any], dict[str, Any]]:
            nonlocal conv, reply
            if not bots_q.exists(cur, org_id, bot_id):
                raise NotFound.of("Chatbot")  # deleted while this turn was being answered
            if conv is not None:
                # Re-read: another turn of this conversation may have committed meanwhile.
                conv = conv_q.get_conversation(cur, org_id, conv["id"])
                if conv is None:
                    raise NotFound.of("Conversation")
                if conv["status"] == "resolved":  # the visitor is back: the bot answers again
                    conv_q.set_status(cur, conv["id"], "open")
            unanswered = not c.answered and c.mode != "escalation"
            streak = (conv["unanswered_streak"] + 1 if conv else 1) if unanswered else 0
            already = conv is not None and conv["status"] == "escalated"
            reason = (
                None if already else escalation.auto_reason(bot.escalation, req.message, c.answered, streak)
            )
            if reason == escalation.HUMAN_REQUEST:
                reply = bot.escalation_message or reply
            elif reason:
                reply = f"{c.reply} {bot.escalation_message}".strip()
            hooks = outbox.subscriptions(cur, org_id)  # once for the turn's events
            if conv is None:
                conv = conv_q.create_conversation(
                    cur, org_id, bot_id, req.visitor, req.metadata, req.publishable_key_id
                )
                emit(cur, conv, "conversation.created", conversation_out(conv, []), hooks)
            # Both messages go in with one INSERT and one counter UPDATE at the end; the
            # events are emitted in their order (created, the question, a lead, the reply).
            count = conv["message_count"]
            user_fields = {
                "role": "user",
                "content": req.message,
                "visitor": req.visitor,
                "metadata": req.metadata,
            }
            user = conv_q.message_row(conv, user_fields, count + 1)
            emit(cur, conv, "message.sent", message_event(conv, user), hooks)
            has_lead = leads.capture(cur, conv, details)
            if not has_lead and leads.should_ask(cur, bot.lead_capture, conv["id"], req.message, pending=1):
                reply = f"{reply}\n\n{leads.ASK_MESSAGE}"
            src_q.set_unit_vectors(cur, c.unit_vectors)  # what this turn embedded, kept
            assistant = conv_q.message_row(conv, self._reply_fields(c, reply, sources, latency_ms), count + 2)
            conv_q.insert_messages(cur, conv, [user, assistant], qvec)
            conv_q.count_messages(cur, conv, 2, streak)  # conv is now the row as updated
            if reason:
                escalate_in(cur, org_id, conv["id"], reason)
                conv = conv_q.must_get(cur, org_id, conv["id"])
            emit(cur, conv, "message.sent", message_event(conv, assistant), hooks)
            return conv, assistant

        # Changes no cached read (chatbots, publishable keys): the bot stays cached across turns.
        try:
            final, assistant = await self.db.awrite(write, keeps_cached=True)
        finally:
            if c.unit_vectors and self.knowledge is not None:  # the rows cached are without them
                self.knowledge.unit_cache.forget({chunk for chunk, _, _ in c.unit_vectors})
        return ChatReply(
            reply=reply,
            sources=[SourceRef(title=s.title, url=s.url, snippet=s.snippet) for s in sources],
            conversation_id=final["id"],
            message_id=assistant["id"],
            escalated=final["status"] == "escalated",
            answered=c.answered,
            confidence=c.confidence,
            decline_reason=None if c.answered else c.decline_reason,
        )
