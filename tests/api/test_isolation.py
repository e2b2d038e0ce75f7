"""Tenant isolation (OWASP API1/API3/API5): every route with another organization's ids is a
404 (a member key on an admin route: 403), and no list, search, export or analytics answer of
one organization ever holds the other's data. Mass assignment is rejected.

The table has one row per route; a test fails when /v1/openapi.json lists a route the table
does not, so a new feature's route is one more line here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from support.helpers import assert_error_body, cli_create_org
from support.knowledge import models_settings

from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.web.app import create_app

pytestmark = pytest.mark.models

SECRET_WORD = "zanzibarquokka"  # only org A's knowledge and conversations hold it

# (method, path template, JSON body or None). {bot} {src} {conv} {msg} {lead} {wh} {dlv} {key}
# {gap} {pub} {run} are org A's ids.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/chatbots/{bot}", None),
    ("PATCH", "/v1/chatbots/{bot}", {"name": "taken over"}),
    ("DELETE", "/v1/chatbots/{bot}", None),
    ("GET", "/v1/chatbots/{bot}/sources", None),
    ("POST", "/v1/chatbots/{bot}/sources", {"type": "text", "title": "x", "content": "injected"}),
    ("GET", "/v1/sources/{src}", None),
    ("DELETE", "/v1/sources/{src}", None),
    ("POST", "/v1/chatbots/{bot}/search", {"query": SECRET_WORD}),
    ("POST", "/v1/chatbots/{bot}/chat", {"message": f"what is {SECRET_WORD}?"}),
    ("GET", "/v1/chatbots/{bot}/conversations", None),
    ("GET", "/v1/conversations/{conv}", None),
    ("POST", "/v1/conversations/{conv}/messages", {"content": "hijack"}),
    ("POST", "/v1/conversations/{conv}/escalate", {}),
    ("POST", "/v1/conversations/{conv}/resolve", {}),
    ("POST", "/v1/messages/{msg}/feedback", {"rating": "down"}),
    ("GET", "/v1/chatbots/{bot}/leads", None),
    ("GET", "/v1/chatbots/{bot}/leads/export", None),
    ("GET", "/v1/leads/{lead}", None),
    ("GET", "/v1/chatbots/{bot}/analytics", None),
    ("GET", "/v1/chatbots/{bot}/analytics/topics", None),
    ("POST", "/v1/chatbots/{bot}/analytics/topics/refresh", {}),
    ("GET", "/v1/chatbots/{bot}/analytics/gaps", None),
    ("POST", "/v1/chatbots/{bot}/analytics/gaps/{gap}/resolve", {"answer": "x"}),
    ("GET", "/v1/webhooks/{wh}", None),
    ("PATCH", "/v1/webhooks/{wh}", {"description": "mine now"}),
    ("DELETE", "/v1/webhooks/{wh}", None),
    ("GET", "/v1/webhooks/{wh}/deliveries", None),
    ("POST", "/v1/webhooks/{wh}/test", {}),
    ("POST", "/v1/webhooks/{wh}/rotate-secret", {}),
    ("GET", "/v1/webhook-deliveries/{dlv}", None),
    ("POST", "/v1/webhook-deliveries/{dlv}/retry", {}),
    ("DELETE", "/v1/api-keys/{key}", None),
    ("GET", "/v1/chatbots/{bot}/publishable-keys", None),
    ("POST", "/v1/chatbots/{bot}/publishable-keys", {"allowedOrigins": ["https://evil.example"]}),
    ("DELETE", "/v1/chatbots/{bot}/publishable-keys/{pub}", None),
    ("GET", "/v1/chatbots/{bot}/conversations/export", None),
    ("GET", "/v1/chatbots/{bot}/evaluations", None),
    ("POST", "/v1/chatbots/{bot}/evaluations", {"cases": [{"question": f"what is {SECRET_WORD}?"}]}),
    ("GET", "/v1/evaluations/{run}", None),
]
# Routes without another org's id in them: checked by the list/search tests below.
UNSCOPED = {
    ("GET", "/v1/health"),
    ("GET", "/v1/organization"),
    ("GET", "/v1/api-keys"),
    ("POST", "/v1/api-keys"),
    ("GET", "/v1/chatbots"),
    ("POST", "/v1/chatbots"),
    ("GET", "/v1/webhooks"),
    ("POST", "/v1/webhooks"),
    ("GET", "/v1/dashboard/session"),
    ("POST", "/v1/dashboard/session"),
    ("DELETE", "/v1/dashboard/session"),
}
ADMIN_ONLY = ("/v1/webhooks", "/v1/webhook-deliveries", "/v1/api-keys", "/publishable-keys")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[tuple[TestClient, dict[str, str], Any, dict[str, str]]]:
    settings = models_settings(tmp_path_factory.mktemp("iso"), webhook_allow_private=True)
    key = bootstrap(settings)
    b = cli_create_org(settings, "org-b")
    with TestClient(create_app(settings), timeout=120) as c:
        a = {"x-api-key": key}
        bot = c.post(
            "/v1/chatbots",
            headers=a,
            json={"name": "A bot", "leadCapture": {"enabled": True}, "escalation": {"enabled": True}},
        ).json()["id"]
        src = c.post(
            f"/v1/chatbots/{bot}/sources",
            headers=a,
            json={"type": "text", "title": "Secret", "content": f"The {SECRET_WORD} code is 4471."},
        ).json()["id"]
        c.app.state.knowledge.wait_idle(120)
        chat = c.post(
            f"/v1/chatbots/{bot}/chat",
            headers=a,
            json={"message": f"What is the {SECRET_WORD} code?", "visitor": {"email": "ceo@a.example"}},
        ).json()
        conv = chat["conversationId"]
        c.post(f"/v1/messages/{chat['messageId']}/feedback", headers=a, json={"rating": "down"})
        lead = c.get(f"/v1/chatbots/{bot}/leads", headers=a).json()["data"][0]["id"]
        wh = c.post(
            "/v1/webhooks", headers=a, json={"url": "http://127.0.0.1:9/a", "events": ["lead.captured"]}
        ).json()["id"]
        dlv = c.post(f"/v1/webhooks/{wh}/test", headers=a).json()["id"]
        made_key = c.post("/v1/api-keys", headers=a, json={"role": "member"}).json()
        gaps = c.get(f"/v1/chatbots/{bot}/analytics/gaps", headers=a).json()["data"]
        pub = c.post(
            f"/v1/chatbots/{bot}/publishable-keys", headers=a, json={"allowedOrigins": ["https://a.example"]}
        ).json()["id"]
        ids = {
            "bot": bot,
            "src": src,
            "conv": conv,
            "msg": chat["messageId"],
            "lead": lead,
            "wh": wh,
            "dlv": dlv,
            "key": made_key["id"],
            "gap": gaps[0]["id"] if gaps else "gap_none",
            "pub": pub,
            "run": c.post(
                f"/v1/chatbots/{bot}/evaluations",
                headers=a,
                json={"cases": [{"question": f"What is the {SECRET_WORD} code?", "expected": ["4471"]}]},
            ).json()["id"],
        }
        yield c, a, b, ids


def test_the_table_covers_every_route_of_the_api(world):
    c, _a, _b, _ids = world
    paths = c.get("/v1/openapi.json").json()["paths"]
    listed = {(m, p) for m, p, _ in ROUTES} | UNSCOPED
    declared = {(m.upper(), _template(p)) for p, item in paths.items() for m in item}
    assert declared <= listed, sorted(declared - listed)


def _template(path: str) -> str:
    names = {
        "bot_id": "bot",
        "source_id": "src",
        "conv_id": "conv",
        "msg_id": "msg",
        "lead_id": "lead",
        "webhook_id": "wh",
        "delivery_id": "dlv",
        "key_id": "key",
        "gap_id": "gap",
        "run_id": "run",
    }
    path = path.replace("publishable-keys/{key_id}", "publishable-keys/{pub}")
    for long, short in names.items():
        path = path.replace("{" + long + "}", "{" + short + "}")
    return path


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_another_organizations_ids_are_404_and_leak_nothing(world, method, path, body):
    c, a, b, ids = world
    resp = c.request(method, path.format(**ids), headers=b.admin, json=body)
    assert resp.status_code == 404, (method, path, resp.status_code, resp.text)
    assert_error_body(resp.json(), "not_found")
    assert SECRET_WORD not in resp.text and "ceo@a.example" not in resp.text
    # ... and a member key of that organization gets 403 on admin routes, never A's data.
    member = c.request(method, path.format(**ids), headers=b.member, json=body)
    expected = 403 if any(part in path for part in ADMIN_ONLY) else 404
    assert member.status_code == expected, (method, path, member.text)
    # A's objects are untouched.
    assert c.get(f"/v1/chatbots/{ids['bot']}", headers=a).json()["name"] == "A bot"


def test_lists_and_search_of_one_organization_never_hold_the_others_data(world):
    c, _a, b, ids = world
    own_bot = c.post("/v1/chatbots", headers=b.admin, json={"name": "B bot"}).json()["id"]
    answers = [
        c.get("/v1/chatbots?limit=100", headers=b.admin),
        c.get("/v1/webhooks?limit=100", headers=b.admin),
        c.get("/v1/api-keys?limit=100", headers=b.admin),
        c.get("/v1/organization", headers=b.admin),
        c.get(f"/v1/chatbots/{own_bot}/sources", headers=b.admin),
        c.get(f"/v1/chatbots/{own_bot}/conversations", headers=b.admin),
        c.get(f"/v1/chatbots/{own_bot}/leads", headers=b.admin),
        c.get(f"/v1/chatbots/{own_bot}/leads/export", headers=b.admin),
        c.get(f"/v1/chatbots/{own_bot}/conversations/export", headers=b.admin),
        c.get(f"/v1/chatbots/{own_bot}/publishable-keys", headers=b.admin),
        c.get(f"/v1/chatbots/{own_bot}/evaluations", headers=b.admin),
        c.get(f"/v1/chatbots/{own_bot}/analytics", headers=b.admin),
        c.get(f"/v1/chatbots/{own_bot}/analytics/gaps", headers=b.admin),
        c.post(f"/v1/chatbots/{own_bot}/search", headers=b.admin, json={"query": SECRET_WORD}),
    ]
    for resp in answers:
        assert resp.status_code == 200, (resp.request.url, resp.text)
        for value in (*ids.values(), SECRET_WORD, "ceo@a.example"):
            assert value not in resp.text, (resp.request.url, value)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chatbots", {"name": "x", "orgId": "org_other"}),
        ("/v1/chatbots", {"name": "x", "id": "bot_chosen"}),
        ("/v1/chatbots", {"name": "x", "createdAt": "2000-01-01T00:00:00Z"}),
        ("/v1/api-keys", {"role": "member", "orgId": "org_other"}),
        ("/v1/api-keys", {"role": "owner"}),
        ("/v1/api-keys", {"role": "admin", "plan": "scale"}),
        (
            "/v1/webhooks",
            {"url": "http://127.0.0.1:9/x", "events": ["lead.captured"], "secret": "whsec_mine"},
        ),
        (
            "/v1/webhooks",
            {"url": "http://127.0.0.1:9/x", "events": ["lead.captured"], "consecutiveFailures": 0},
        ),
    ],
)
def test_mass_assignment_is_rejected(world, path, body):
    c, a, _b, _ids = world
    resp = c.post(path, headers=a, json=body)
    assert resp.status_code == 400, (path, body, resp.text)
    assert_error_body(resp.json(), "bad_request")


def test_a_member_key_cannot_create_keys_or_webhooks(world):
    c, _a, b, _ids = world
    key = c.post("/v1/api-keys", headers=b.member, json={"role": "admin"})
    hook = c.post(
        "/v1/webhooks", headers=b.member, json={"url": "http://127.0.0.1:9/x", "events": ["lead.captured"]}
    )
    for resp in (key, hook):
        assert resp.status_code == 403, resp.text
        assert_error_body(resp.json(), "forbidden")
