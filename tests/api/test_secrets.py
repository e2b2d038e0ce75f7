"""Nothing leaks: secrets are shown once and never cached, data files are private to the
service user whatever the umask, webhook secrets are not readable from a copied database."""

from __future__ import annotations

import base64
import os
import queue
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from standardwebhooks import Webhook
from support.helpers import make_settings
from support.knowledge import create_bot, ingested, models_settings, upload

from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.store.db import open_database
from helpfaster_box.store.secretbox import SecretBox, SecretUnreadable
from helpfaster_box.web.app import create_app


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common default umask 022, under which files came out world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_responses_carrying_a_new_key_or_secret_are_never_cached(client, admin):
    key = client.post("/v1/api-keys", json={"role": "member"}, headers=admin)
    hook = client.post(
        "/v1/webhooks", json={"url": "https://93.184.216.34/h", "events": ["lead.captured"]}, headers=admin
    )
    rotated = client.post(f"/v1/webhooks/{hook.json()['id']}/rotate-secret", headers=admin)
    bot = client.post("/v1/chatbots", json={"name": "Widget"}, headers=admin).json()["id"]
    widget = client.post(
        f"/v1/chatbots/{bot}/publishable-keys",
        json={"allowedOrigins": ["https://shop.example"]},
        headers=admin,
    )
    for resp in (key, hook, rotated, widget):
        assert resp.status_code in (200, 201), resp.text
        assert resp.headers.get("cache-control") == "no-store", resp.headers
    # The list/read answers carry neither key nor secret.
    assert "whsec_" not in client.get(f"/v1/webhooks/{hook.json()['id']}", headers=admin).text
    assert key.json()["key"] not in client.get("/v1/api-keys", headers=admin).text


def modes(root: Path) -> dict[str, int]:
    found = {str(root): stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


@pytest.mark.models
def test_data_files_are_private_whatever_the_umask(tmp_path, loose_umask):
    settings = models_settings(tmp_path / "data")
    key = bootstrap(settings)
    with TestClient(create_app(settings)) as client:
        admin = {"x-api-key": key}
        bot = create_bot(client, admin)
        resp = upload(
            client, admin, bot, "faq.md", b"# Refunds\n\nRefunds take five days.\n", "text/markdown"
        )
        assert resp.status_code == 202, resp.text
        ingested(client)
        seen = modes(settings.data_path)
    names = set(seen)
    assert "helpfaster.duckdb" in names
    assert any(n.startswith("uploads/") and n.count("/") == 2 for n in names), names
    assert any(n.startswith("indexes/") and n.count("/") == 2 for n in names), names
    loose = {n: oct(m) for n, m in seen.items() if m & 0o077}
    assert not loose, loose


def test_the_database_file_is_private_even_without_the_app(tmp_path, loose_umask):
    settings = make_settings(tmp_path / "data")
    bootstrap(settings)  # the CLI's first run
    assert stat.S_IMODE(settings.data_path.stat().st_mode) == 0o700
    assert stat.S_IMODE(settings.db_path.stat().st_mode) == 0o600


def test_the_systemd_unit_keeps_new_files_private():
    unit = (Path(__file__).resolve().parents[2] / "config" / "helpfaster-box.service").read_text()
    assert "\nUMask=0077\n" in unit and "\nStateDirectoryMode=0700\n" in unit


def test_a_copied_database_alone_reveals_no_webhook_secret(tmp_path):
    settings = make_settings(tmp_path / "data")
    key = bootstrap(settings)
    admin = {"x-api-key": key}
    with TestClient(create_app(settings)) as client:
        made = client.post(
            "/v1/webhooks",
            json={"url": "https://93.184.216.34/h", "events": ["lead.captured"]},
            headers=admin,
        ).json()
        rotated = client.post(f"/v1/webhooks/{made['id']}/rotate-secret", headers=admin).json()
    secrets = {made["secret"], rotated["secret"]}
    raw = b"".join(p.read_bytes() for p in settings.data_path.glob("helpfaster.duckdb*"))
    for secret in secrets:
        assert secret.encode() not in raw
        assert secret.removeprefix("whsec_").encode() not in raw
    # With the database alone (another data dir, so another key), signing secrets do not open.
    copy = make_settings(tmp_path / "thief")
    copy.data_path.mkdir(mode=0o700)
    copy.db_path.write_bytes(settings.db_path.read_bytes())
    db = open_database(copy.db_path)
    try:
        stored = db.read(lambda cur: cur.execute("SELECT secret, previous_secret FROM webhooks").fetchall())
        with pytest.raises(SecretUnreadable):
            SecretBox.load(copy.secret_key_path).open(stored[0][0])
        assert all(v.startswith("hfenc1:") for v in stored[0])
    finally:
        db.close()
    assert stat.S_IMODE(settings.secret_key_path.stat().st_mode) == 0o600


def test_plaintext_secrets_of_an_older_version_are_sealed_in_place_at_start(tmp_path, receiver_port):
    settings = make_settings(tmp_path / "data", webhook_allow_private=True, webhook_backoff_scale=0.001)
    key = bootstrap(settings)
    plain = "whsec_" + base64.b64encode(b"k" * 24).decode()
    db = open_database(settings.db_path)
    try:  # a row as the release before sealing wrote it
        org = db.read(lambda cur: cur.execute("SELECT id FROM organizations LIMIT 1").fetchone()[0])
        db.write(
            lambda cur: cur.execute(
                "INSERT INTO webhooks (id, org_id, url, events, secret, enabled, failure_streak, created_at, "
                "updated_at) VALUES ('wh_old', ?, ?, '[\"webhook.test\"]', ?, true, 0, now(), now())",
                [org, f"http://127.0.0.1:{receiver_port.port}/old", plain],
            )
        )
    finally:
        db.close()
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/webhooks/wh_old/test", headers={"x-api-key": key}).status_code == 202
        got = receiver_port.wait_one()
    assert Webhook(plain).verify(got[1], got[0])  # still signs with the old secret
    db = open_database(settings.db_path)
    try:
        stored = db.read(lambda cur: cur.execute("SELECT secret FROM webhooks").fetchone()[0])
    finally:
        db.close()
    assert stored.startswith("hfenc1:") and plain not in stored


class OneReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.got: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                got.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def wait_one(self) -> tuple[dict[str, str], bytes]:
        return self.got.get(timeout=30)


@pytest.fixture
def receiver_port() -> Iterator[OneReceiver]:
    server = OneReceiver()
    yield server
    server.shutdown()
    server.server_close()
