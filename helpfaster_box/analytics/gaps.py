"""Knowledge gaps: the questions the bot could not help with, grouped, and the loop that
turns a person's answer into knowledge.

A question is a gap candidate when its bot reply declined (`answered` false, not a hand-
over), got a thumbs-down, or when the conversation escalated at it (the last visitor
message before `escalated_at`, preferring a real question over a bare "a human please").
Candidates join groups once (`gap_members`) and never move, so gap ids are stable: a
candidate joins the open or resolved gap whose first question is nearest in meaning
(cosine >= SAME_QUESTION on the stored vectors; exact text when a vector is missing), or
starts a new gap. A resolved gap asked and declined again after it was resolved reopens.

Grouping runs when the gaps are read (at most SYNC_BATCH new candidates per read), in
one short write; a few hundred gaps compare as one matrix product.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import duckdb
import numpy as np

from helpfaster_box.store.db import rows_as_dicts
from helpfaster_box.store.ids import new_id, utcnow

# Paraphrases of one question score 0.9-0.97 with MiniLM; different questions on the
# same subject ("reset my password" / "change my password") about 0.75-0.88.
SAME_QUESTION = 0.9
SYNC_BATCH = 5000
EXAMPLE_CONVERSATIONS = 5

_CANDIDATES = """
WITH q AS (
    SELECT q.id, q.content, q.seq, q.conversation_id, q.created_at,
        r.answered AS r_answered, r.answer_mode AS r_mode, r.feedback_rating AS r_rating
    FROM messages q
    LEFT JOIN messages r ON r.conversation_id = q.conversation_id AND r.seq = q.seq + 1
        AND r.role = 'assistant'
    WHERE q.chatbot_id = $bot AND q.role = 'user'
), esc AS (
    SELECT max_by(q.id, (coalesce(q.r_mode, '') <> 'escalation')::INT * 1000000 + q.seq) AS id
    FROM q JOIN conversations c ON c.id = q.conversation_id
    WHERE c.escalated_at IS NOT NULL AND q.created_at <= c.escalated_at
    GROUP BY c.id
)
SELECT q.id, q.content, q.created_at, v.embedding,
    CASE WHEN q.r_answered = false AND q.r_mode <> 'escalation' THEN 'declined'
         WHEN q.r_rating = 'down' THEN 'thumbs_down' ELSE 'escalated' END AS reason
FROM q LEFT JOIN message_vectors v ON v.message_id = q.id
WHERE ((q.r_answered = false AND q.r_mode <> 'escalation') OR q.r_rating = 'down'
       OR q.id IN (SELECT id FROM esc))
    AND q.id NOT IN (SELECT message_id FROM gap_members WHERE chatbot_id = $bot)
ORDER BY q.created_at, q.id
LIMIT $limit
"""


def _text_key(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def sync(cur: duckdb.DuckDBPyConnection, org_id: str, bot_id: str) -> int:
    """Assign new candidate questions to gaps; returns how many were assigned."""
    found = rows_as_dicts(cur.execute(_CANDIDATES, {"bot": bot_id, "limit": SYNC_BATCH}))
    if not found:
        return 0
    gaps = rows_as_dicts(
        cur.execute(
            "SELECT id, question, embedding, status, resolved_at FROM gaps WHERE chatbot_id = ?", [bot_id]
        )
    )
    by_text = {_text_key(g["question"]): g for g in gaps}
    near = _Nearest([g for g in gaps if g["embedding"] is not None])
    members: list[tuple[str, str, str]] = []
    for row in found:
        vec = None if row["embedding"] is None else np.asarray(row["embedding"], dtype=np.float32)
        gap = by_text.get(_text_key(row["content"])) or (near.find(vec) if vec is not None else None)
        if gap is None:
            gap = _new_gap(cur, org_id, bot_id, row)
            by_text[_text_key(row["content"])] = gap
            if vec is not None:
                near.add(gap)
        elif (
            gap["status"] == "resolved"
            and row["reason"] == "declined"
            and row["created_at"] > gap["resolved_at"]
        ):
            cur.execute("UPDATE gaps SET status = 'open' WHERE id = ?", [gap["id"]])
            gap["status"] = "open"
        members.append((row["id"], gap["id"], row["reason"]))
    cur.execute(
        "INSERT INTO gap_members (message_id, chatbot_id, gap_id, reason) "
        "SELECT unnest($msgs), $bot, unnest($gaps), unnest($reasons)",
        {
            "msgs": [m[0] for m in members],
            "bot": bot_id,
            "gaps": [m[1] for m in members],
            "reasons": [m[2] for m in members],
        },
    )
    return len(members)


class _Nearest:
    """The gap whose first question is nearest a vector (cosine >= SAME_QUESTION)."""

    def __init__(self, gaps: list[dict[str, Any]]) -> None:
        self.gaps = gaps
        self._matrix: np.ndarray | None = None

    def add(self, gap: dict[str, Any]) -> None:
        self.gaps.append(gap)
        self._matrix = None

    def find(self, vec: np.ndarray) -> dict[str, Any] | None:
        if self._matrix is None or self._matrix.shape[1] != len(vec):
            # Vectors of another size (an embedding model swapped) never match.
            self._matrix = np.asarray(
                [
                    g["embedding"] if len(g["embedding"]) == len(vec) else np.zeros(len(vec))
                    for g in self.gaps
                ],
                dtype=np.float32,
            ).reshape(len(self.gaps), len(vec))
        if not len(self.gaps):
            return None
        sims = self._matrix @ vec
        best = int(np.argmax(sims))
        return self.gaps[best] if sims[best] >= SAME_QUESTION else None


def _new_gap(cur: duckdb.DuckDBPyConnection, org_id: str, bot_id: str, row: dict[str, Any]) -> dict[str, Any]:
    gap = {
        "id": new_id("gap"),
        "question": row["content"],
        "embedding": row["embedding"],
        "status": "open",
        "resolved_at": None,
    }
    cur.execute(
        "INSERT INTO gaps (id, org_id, chatbot_id, question, embedding, status, created_at) "
        "VALUES (?, ?, ?, ?, ?, 'open', ?)",
        [gap["id"], org_id, bot_id, row["content"], row["embedding"], utcnow()],
    )
    return gap


_LIST = """
WITH mem AS (
    SELECT gm.gap_id, gm.reason, q.id AS q_id, q.seq, q.conversation_id, q.created_at
    FROM gap_members gm JOIN messages q ON q.id = gm.message_id
    WHERE gm.chatbot_id = $bot {where}
), replies AS (
    SELECT mem.gap_id, mem.created_at, min_by(a.content, a.seq) AS answer, min_by(a.author, a.seq) AS author
    FROM mem JOIN messages a ON a.conversation_id = mem.conversation_id AND a.role = 'agent' AND a.seq > mem.seq
    GROUP BY mem.gap_id, mem.q_id, mem.created_at
), answers AS (
    SELECT gap_id, max_by(answer, created_at) AS answer, max_by(author, created_at) AS author
    FROM replies GROUP BY gap_id
)
SELECT g.id, g.question, g.status, g.answer AS resolved_answer, g.source_id, g.resolved_at,
    count(*) AS n, max(mem.created_at) AS last_seen, list(DISTINCT mem.reason ORDER BY mem.reason) AS reasons,
    list(mem.conversation_id ORDER BY mem.created_at DESC) AS conversations,
    any_value(answers.answer) AS answer, any_value(answers.author) AS author
FROM gaps g JOIN mem ON mem.gap_id = g.id LEFT JOIN answers ON answers.gap_id = g.id
WHERE g.chatbot_id = $bot
GROUP BY g.id, g.question, g.status, g.answer, g.source_id, g.resolved_at
ORDER BY n DESC, last_seen DESC, g.id DESC
"""


def list_gaps(
    cur: duckdb.DuckDBPyConnection,
    bot_id: str,
    start: datetime | None,
    end: datetime | None,
    gap_id: str | None = None,
) -> list[dict[str, Any]]:
    """Every gap with members in [start, end], most frequent first (or only `gap_id`)."""
    params: dict[str, Any] = {"bot": bot_id}
    where = ""
    if start is not None:
        where += " AND q.created_at >= $start"
        params["start"] = start
    if end is not None:
        where += " AND q.created_at <= $end"
        params["end"] = end
    if gap_id is not None:
        where += " AND gm.gap_id = $gap"
        params["gap"] = gap_id
    rows = rows_as_dicts(cur.execute(_LIST.format(where=where), params))
    for r in rows:
        r["conversations"] = list(dict.fromkeys(r["conversations"]))[:EXAMPLE_CONVERSATIONS]
    return rows


def mark_resolved(cur: duckdb.DuckDBPyConnection, gap_id: str, answer: str, source_id: str) -> None:
    cur.execute(
        "UPDATE gaps SET status = 'resolved', answer = ?, source_id = ?, resolved_at = ? WHERE id = ?",
        [answer, source_id, utcnow(), gap_id],
    )
