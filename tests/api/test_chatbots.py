"""Chatbots: CRUD, validation, PATCH semantics, pagination under inserts."""

from __future__ import annotations

import re

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

FULL = {
    "name": "Support bot",
    "instructions": "Answer from the handbook only.",
    "welcomeMessage": "Hello there!",
    "fallbackMessage": "I don't know that one.",
    "escalationMessage": "A human will take over.",
    "answerMode": "extractive",
    "temperature": 0.7,
    "maxTokens": 512,
    "leadCapture": {
        "enabled": True,
        "fields": ["email", "company"],
        "askAfterMessages": 1,
        "onIntent": False,
    },
    "escalation": {"enabled": False, "onHumanRequest": False, "afterUnanswered": 5},
}


def create(client, headers, **fields):
    resp = client.post("/v1/chatbots", json={"name": "Bot", **fields}, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_crud(client, admin):
    made = client.post("/v1/chatbots", json=FULL, headers=admin)
    assert made.status_code == 201
    bot = made.json()
    assert bot["id"].startswith("bot_")
    assert {k: bot[k] for k in FULL} == FULL
    assert ISO.match(bot["createdAt"]) and ISO.match(bot["updatedAt"])

    got = client.get(f"/v1/chatbots/{bot['id']}", headers=admin)
    assert got.status_code == 200 and got.json() == bot

    listed = client.get("/v1/chatbots", headers=admin).json()
    assert listed == {"data": [bot], "hasMore": False, "nextCursor": None}

    patched = client.patch(f"/v1/chatbots/{bot['id']}", json={"name": "Renamed"}, headers=admin)
    assert patched.status_code == 200 and patched.json()["name"] == "Renamed"
    assert client.get(f"/v1/chatbots/{bot['id']}", headers=admin).json()["name"] == "Renamed"

    deleted = client.delete(f"/v1/chatbots/{bot['id']}", headers=admin)
    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(f"/v1/chatbots/{bot['id']}", headers=admin).status_code == 404
    assert client.delete(f"/v1/chatbots/{bot['id']}", headers=admin).status_code == 404
    assert client.patch(f"/v1/chatbots/{bot['id']}", json={"name": "x"}, headers=admin).status_code == 404
    assert client.get("/v1/chatbots", headers=admin).json()["data"] == []


def test_create_with_only_a_name_fills_the_defaults(client, admin):
    bot = create(client, admin, name="Minimal")
    assert bot["answerMode"] == "extractive"  # settings.default_answer_mode
    assert 0 <= bot["temperature"] <= 2 and bot["maxTokens"] >= 1
    for text in ("instructions", "welcomeMessage", "fallbackMessage", "escalationMessage"):
        assert isinstance(bot[text], str) and bot[text]
    assert isinstance(bot["leadCapture"]["enabled"], bool)
    assert isinstance(bot["escalation"]["enabled"], bool)
    # null on create means "the default", same as absent
    explicit = create(client, admin, name="Nulls", temperature=None, answerMode=None, leadCapture=None)
    for field in ("temperature", "answerMode", "leadCapture", "maxTokens", "instructions"):
        assert explicit[field] == bot[field]


VALIDATION_CASES = [
    ({"name": ""}, False),
    ({"name": "x" * 201}, False),
    ({"name": "x" * 200}, True),
    ({"name": "é"}, True),
    ({"temperature": -0.01}, False),
    ({"temperature": 2.01}, False),
    ({"temperature": 0}, True),
    ({"temperature": 2}, True),
    ({"maxTokens": 0}, False),
    ({"maxTokens": 1.5}, False),
    ({"maxTokens": 1_000_000}, False),
    ({"maxTokens": 1}, True),
    ({"answerMode": "creative"}, False),
    ({"answerMode": "grounded"}, True),
    ({"answerMode": "generative"}, True),
    ({"answerMode": "extractive"}, True),
    ({"welcomeMessage": ""}, False),
    ({"leadCapture": {"fields": ["shoe size"]}}, False),
    ({"leadCapture": {"askAfterMessages": -1}}, False),
    ({"escalation": {"afterUnanswered": "two"}}, False),
    ({"answer_mode": "grounded"}, False),  # snake_case is an unknown field
]


def test_validation(client, admin):
    created = 0
    for fields, ok in VALIDATION_CASES:
        resp = client.post("/v1/chatbots", json={"name": "Valid", **fields}, headers=admin)
        if ok:
            assert resp.status_code == 201, (fields, resp.text)
            created += 1
            for key, value in fields.items():
                assert resp.json()[key] == value, fields
        else:
            assert resp.status_code == 400, (fields, resp.text)
            assert resp.json()["error"] == "bad_request", fields
            # the message names the offending field
            field = next(iter(fields))
            assert field in resp.text, (fields, resp.text)
        # a rejected create leaves nothing behind
        count = len(client.get("/v1/chatbots", params={"limit": 100}, headers=admin).json()["data"])
        assert count == created, fields


def test_validation_on_patch_changes_nothing(client, admin):
    bot = create(client, admin, temperature=0.5)
    for body in (
        {"temperature": 3},
        {"maxTokens": 0},
        {"answerMode": "loud"},
        {"name": ""},
        {"nope": 1},
    ):
        resp = client.patch(f"/v1/chatbots/{bot['id']}", json=body, headers=admin)
        assert resp.status_code == 400, (body, resp.text)
    assert client.get(f"/v1/chatbots/{bot['id']}", headers=admin).json() == bot


def test_patch_absent_is_unchanged_null_resets_to_default(client, admin):
    defaults = create(client, admin, name="Defaults")
    bot = client.post("/v1/chatbots", json=FULL, headers=admin).json()
    url = f"/v1/chatbots/{bot['id']}"

    # absent fields are unchanged
    one = client.patch(url, json={"temperature": 1.5}, headers=admin).json()
    assert one["temperature"] == 1.5
    assert {k: one[k] for k in FULL if k != "temperature"} == {
        k: v for k, v in FULL.items() if k != "temperature"
    }
    assert one["createdAt"] == bot["createdAt"]
    assert one["updatedAt"] >= bot["updatedAt"]

    # an empty PATCH changes nothing
    assert {
        k: v for k, v in client.patch(url, json={}, headers=admin).json().items() if k != "updatedAt"
    } == {k: v for k, v in one.items() if k != "updatedAt"}

    # null resets each resettable field to its default, and only that field
    for field in (
        "instructions",
        "welcomeMessage",
        "fallbackMessage",
        "escalationMessage",
        "answerMode",
        "temperature",
        "maxTokens",
        "leadCapture",
        "escalation",
    ):
        before = client.get(url, headers=admin).json()
        after = client.patch(url, json={field: None}, headers=admin)
        assert after.status_code == 200, (field, after.text)
        after = after.json()
        assert after[field] == defaults[field], field
        others = {k for k in FULL if k != field}
        assert {k: after[k] for k in others} == {k: before[k] for k in others}, field

    # name is required: null is not a reset
    resp = client.patch(url, json={"name": None}, headers=admin)
    assert resp.status_code == 400 and resp.json()["error"] == "bad_request"
    assert "name" in resp.json()["message"]
    assert client.get(url, headers=admin).json()["name"] == FULL["name"]


def test_patch_nested_objects_are_replaced_whole_and_validated(client, admin):
    bot = client.post("/v1/chatbots", json=FULL, headers=admin).json()
    url = f"/v1/chatbots/{bot['id']}"
    after = client.patch(url, json={"leadCapture": {"enabled": False}}, headers=admin).json()
    assert after["leadCapture"]["enabled"] is False
    # fields not given inside the object take their defaults, not the old values
    assert after["leadCapture"]["fields"] == ["name", "email"]
    # escalationMessage lives beside escalation settings; changing one keeps the other
    after = client.patch(url, json={"escalation": {"enabled": True}}, headers=admin).json()
    assert after["escalation"]["enabled"] is True
    assert after["escalationMessage"] == FULL["escalationMessage"]
    after = client.patch(url, json={"escalationMessage": "Connecting you."}, headers=admin).json()
    assert after["escalationMessage"] == "Connecting you." and after["escalation"]["enabled"] is True


def walk(client, headers, limit, on_page=None):
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        resp = client.get("/v1/chatbots", params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert set(body) == {"data", "hasMore", "nextCursor"}
        assert len(body["data"]) <= limit
        assert body["hasMore"] == (body["nextCursor"] is not None)
        seen += body["data"]
        pages += 1
        if on_page:
            on_page(pages)
        if not body["hasMore"]:
            return seen, pages
        assert len(body["data"]) == limit
        cursor = body["nextCursor"]


def test_pagination_walks_every_row_once_while_rows_are_inserted(client, admin):
    original = [create(client, admin, name=f"bot {i:02d}")["id"] for i in range(45)]
    inserted: list[str] = []

    def insert_mid_walk(page_number):
        if page_number in (2, 4):
            inserted.extend(
                create(client, admin, name=f"late {page_number}.{j}")["id"]
                for j in range(3 if page_number == 2 else 2)
            )

    seen, pages = walk(client, admin, 7, insert_mid_walk)
    ids = [b["id"] for b in seen]
    assert len(inserted) == 5
    assert len(ids) == len(set(ids)), "a row was served twice"
    assert set(original) <= set(ids), f"missed {set(original) - set(ids)}"
    # rows added after the walk began are newer than everything already walked: never shown
    assert not set(inserted) & set(ids)
    # newest first
    assert ids == list(reversed(original))
    stamps = [b["createdAt"] for b in seen]
    assert stamps == sorted(stamps, reverse=True)
    assert pages == 7  # 45 rows / 7 per page

    # a fresh walk sees everything, the late rows first
    again, _ = walk(client, admin, 100)
    assert [b["id"] for b in again] == list(reversed(original + inserted))


def test_default_page_size_and_limits(client, admin):
    for i in range(21):
        create(client, admin, name=f"b{i}")
    first = client.get("/v1/chatbots", headers=admin).json()
    assert len(first["data"]) == 20 and first["hasMore"] is True
    second = client.get("/v1/chatbots", params={"cursor": first["nextCursor"]}, headers=admin).json()
    assert len(second["data"]) == 1 and second["hasMore"] is False and second["nextCursor"] is None
    assert len(client.get("/v1/chatbots", params={"limit": 100}, headers=admin).json()["data"]) == 21
    assert len(client.get("/v1/chatbots", params={"limit": 1}, headers=admin).json()["data"]) == 1


def test_garbage_cursor_is_400(client, admin):
    for cursor in ["garbage", "!!!", "Zm9vYmFy", "MjAyNi0xMy0wMVQwMDowMHxib3Rf", "%00"]:
        resp = client.get("/v1/chatbots", params={"cursor": cursor}, headers=admin)
        assert resp.status_code == 400, (cursor, resp.text)
        body = resp.json()
        assert body["error"] == "bad_request" and "cursor" in body["message"], cursor


def test_org_usage_counts_chatbots(client, admin):
    for i in range(3):
        create(client, admin, name=f"u{i}")
    org = client.get("/v1/organization", headers=admin).json()
    assert org["usage"]["chatbots"] == 3
    assert org["plan"] == "scale" and org["limits"]["requestsPerMinute"] == 300
