"""The dashboard's sign-in session and the files the box serves at `/`.

Session: an API key exchanged for an HttpOnly SameSite=Strict cookie; reads with the
cookie alone, writes only with the session's CSRF token; revoking the key ends it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from litestar.testing import TestClient
from support.helpers import assert_error_body, make_settings

from helpfaster_box.keys import sessions
from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.web.app import create_app

SESSION = "/v1/dashboard/session"


def sign_in(client: TestClient, key: str) -> str:
    r = client.post(SESSION, json={"apiKey": key})
    assert r.status_code == 201, r.text
    return str(r.json()["csrfToken"])


def test_signing_in_sets_an_httponly_strict_cookie_and_returns_a_csrf_token(
    client: TestClient, admin_key: str
) -> None:
    r = client.post(SESSION, json={"apiKey": admin_key})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"csrfToken", "organization", "role", "expiresAt"}
    assert body["role"] == "admin" and body["organization"]["name"] == "default"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("hf_session=")
    for part in ("HttpOnly", "SameSite=strict", "Path=/v1"):
        assert part.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # plain http: a Secure cookie would never come back
    again = client.get(SESSION)
    assert again.status_code == 200 and again.json()["csrfToken"] == body["csrfToken"]


def test_the_database_holds_only_a_hash_of_the_session_token(client: TestClient, admin_key: str) -> None:
    sign_in(client, admin_key)
    token = client.cookies["hf_session"]
    rows = client.app.state.db.read(lambda cur: cur.execute("SELECT * FROM dashboard_sessions").fetchall())
    assert rows and all(token not in str(row) for row in rows)
    assert any(sessions.hash_token(token) in row for row in rows)


@pytest.mark.parametrize("key", ["hf_live_" + "x" * 32, "nonsense"])
def test_a_wrong_key_signs_nobody_in(client: TestClient, key: str) -> None:
    r = client.post(SESSION, json={"apiKey": key})
    assert r.status_code == 401
    assert_error_body(r.json(), "unauthorized")
    assert "set-cookie" not in r.headers
    signed_out = client.get(SESSION)
    assert signed_out.status_code == 404
    assert_error_body(signed_out.json(), "not_found")


def test_reads_need_only_the_cookie_but_writes_need_the_csrf_token(
    client: TestClient, admin_key: str
) -> None:
    csrf = sign_in(client, admin_key)
    assert client.get("/v1/chatbots").status_code == 200
    missing = client.post("/v1/chatbots", json={"name": "No token"})
    assert missing.status_code == 403
    assert_error_body(missing.json(), "forbidden")
    assert "csrf" in missing.json()["message"].lower()
    wrong = client.post("/v1/chatbots", json={"name": "Wrong"}, headers={"x-csrf-token": "0" * 64})
    assert wrong.status_code == 403
    made = client.post("/v1/chatbots", json={"name": "With token"}, headers={"x-csrf-token": csrf})
    assert made.status_code == 201, made.text
    bot = made.json()["id"]
    assert client.delete(f"/v1/chatbots/{bot}").status_code == 403
    assert client.delete(f"/v1/chatbots/{bot}", headers={"x-csrf-token": csrf}).status_code == 204


def test_a_session_carries_its_keys_role(client: TestClient, admin: dict[str, str]) -> None:
    member = client.post("/v1/api-keys", json={"role": "member"}, headers=admin).json()["key"]
    csrf = sign_in(client, member)
    assert client.get(SESSION).json()["role"] == "member"
    refused = client.get("/v1/api-keys")
    assert refused.status_code == 403
    assert client.post("/v1/chatbots", json={"name": "ok"}, headers={"x-csrf-token": csrf}).status_code == 201


def test_revoking_the_api_key_ends_its_sessions_at_once(client: TestClient, admin: dict[str, str]) -> None:
    second = client.post("/v1/api-keys", json={"role": "admin", "name": "laptop"}, headers=admin).json()
    sign_in(client, second["key"])
    assert client.get("/v1/chatbots").status_code == 200
    assert client.delete(f"/v1/api-keys/{second['id']}", headers=admin).status_code == 204
    gone = client.get("/v1/chatbots")
    assert gone.status_code == 401
    assert_error_body(gone.json(), "unauthorized")
    assert client.get(SESSION).status_code == 404


def test_signing_out_ends_the_session_and_needs_the_csrf_token(client: TestClient, admin_key: str) -> None:
    csrf = sign_in(client, admin_key)
    token = client.cookies["hf_session"]
    assert client.delete(SESSION).status_code == 403
    r = client.delete(SESSION, headers={"x-csrf-token": csrf})
    assert r.status_code == 204
    assert 'hf_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    client.cookies.set("hf_session", token)  # a copied cookie does not come back to life
    assert client.get("/v1/chatbots").status_code == 401
    assert client.get(SESSION).status_code == 404
    assert client.delete(SESSION).status_code == 204  # signing out twice is fine


def test_an_api_key_header_wins_over_the_cookie(client: TestClient, admin: dict[str, str]) -> None:
    member = client.post("/v1/api-keys", json={"role": "member"}, headers=admin).json()["key"]
    sign_in(client, member)
    assert client.get("/v1/api-keys", headers=admin).status_code == 200  # no CSRF needed with a key
    assert client.post("/v1/chatbots", json={"name": "k"}, headers=admin).status_code == 201


def test_sign_in_from_another_site_or_as_a_form_is_refused(client: TestClient, admin_key: str) -> None:
    cross = client.post(SESSION, json={"apiKey": admin_key}, headers={"sec-fetch-site": "cross-site"})
    assert cross.status_code == 403
    form = client.post(
        SESSION, content=f'{{"apiKey": "{admin_key}"}}', headers={"content-type": "text/plain"}
    )
    assert form.status_code == 415
    assert "set-cookie" not in cross.headers and "set-cookie" not in form.headers


def test_session_requests_count_against_the_orgs_rate_limit(tmp_path) -> None:
    settings = make_settings(tmp_path / "data", rate_limit_scale=3)
    key = bootstrap(settings)
    assert key
    with TestClient(create_app(settings)) as c:
        sign_in(c, key)  # 1
        assert c.get("/v1/chatbots").status_code == 200  # 2
        assert c.get("/v1/chatbots").headers["X-RateLimit-Remaining"] == "0"  # 3
        over = c.get("/v1/chatbots")
        assert over.status_code == 429 and over.headers["Retry-After"].isdigit()


def test_a_session_ends_when_idle_or_too_old() -> None:
    now = datetime(2026, 11, 26, 12, 0)
    idle = timedelta(hours=8)
    row = {"revoked_at": None, "expires_at": now + timedelta(hours=1), "last_seen_at": now}
    assert sessions.is_live(row, now + timedelta(hours=1) - timedelta(seconds=1), idle)
    assert not sessions.is_live(row, now + timedelta(hours=1), idle)  # absolute expiry
    long = {**row, "expires_at": now + timedelta(hours=24)}
    assert sessions.is_live(long, now + timedelta(hours=7, minutes=59), idle)
    assert not sessions.is_live(long, now + timedelta(hours=8), idle)  # idle
    assert not sessions.is_live({**long, "revoked_at": now}, now, idle)  # key revoked


# --- the files at / ----------------------------------------------------------------


def test_the_dashboard_is_served_with_a_strict_content_security_policy(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in r.text
    csp = r.headers["content-security-policy"]
    for part in ("default-src 'self'", "img-src 'self' data:", "frame-ancestors 'none'", "object-src 'none'"):
        assert part in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["/static/app.js", "/static/pages/inbox.js", "/static/sse.js"])
def test_dashboard_modules_are_javascript_with_an_etag(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    again = client.get(path, headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content


def test_stylesheet_is_css(client: TestClient) -> None:
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("path", ["/static/README.md", "/static/nope.js", "/static/..%2Fapp.py", "/static/"])
def test_only_the_dashboards_files_are_served(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert_error_body(r.json(), "not_found")


def test_the_widget_script_is_embeddable_and_cached_briefly(client: TestClient) -> None:
    r = client.get("/widget.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cache-control"] == "public, max-age=300"
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "x-frame-options" not in r.headers and "content-security-policy" not in r.headers


def test_api_answers_cannot_be_framed_or_sniffed(client: TestClient, admin: dict[str, str]) -> None:
    for r in (client.get("/v1/chatbots", headers=admin), client.get("/v1/nope", headers=admin)):
        assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
        assert "Origin" in r.headers["vary"]
