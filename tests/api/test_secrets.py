"""Nothing leaks: secrets are shown once and never cached, data files are private to the
service user whatever the umask, webhook secrets are not readable from a copied database."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_settings
from knowledge_helpers import create_bot, ingested, models_settings, upload
from litestar.testing import TestClient

from helpfaster_box.organizations.service import bootstrap
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
    for resp in (key, hook, rotated):
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
