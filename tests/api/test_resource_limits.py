"""Every resource a caller can grow is bounded by a setting with a documented default
(issue 13, OWASP API4): this file holds the sources-per-chatbot limit and the inventory that
ties each limit to its setting, its README row and the test that exercises it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient
from support.helpers import assert_error_body, cli_create_org
from support.knowledge import add_json, create_bot, ingested, models_settings

from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.settings import Settings
from helpfaster_box.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]

# resource -> (setting, default, where a test drives it past the limit)
LIMITS = {
    "JSON body size": ("max_request_bytes", 1_048_576, "tests/api/test_errors.py"),
    "upload size": ("max_upload_bytes", 26_214_400, "tests/api/test_sources.py"),
    "JSON nesting": ("max_json_depth", 32, "tests/api/test_hostile_input.py"),
    "chat message length": ("max_message_chars", 4000, "tests/api/test_chat.py"),
    "sources per chatbot": ("max_sources_per_chatbot", 10_000, "tests/api/test_resource_limits.py"),
    "PDF pages": ("ingest_max_pdf_pages", 2_000, "tests/e2e/test_hostile_uploads.py"),
    "parse memory": ("ingest_parse_memory_mb", 1024, "tests/api/test_ingest_limits.py"),
    "parse time": ("ingest_parse_timeout_s", 120.0, "tests/api/test_ingest_limits.py"),
    "concurrent generations": ("llm_max_sequences", 4, "tests/api/test_chat.py"),
    "waiting chats": ("llm_queue_size", 32, "tests/api/test_chat.py"),
    "reply tokens": ("llm_max_tokens", 160, "tests/api/test_chatbots.py"),
    "generation time": ("llm_timeout_s", 60.0, "tests/api/test_chat.py"),
    "requests per organization": ("rate_limit_scale", 300, "tests/api/test_ratelimit.py"),
    "requests per widget visitor": ("widget_rate_limit", 30, "tests/api/test_publishable_keys.py"),
    "URL page size": ("url_fetch_max_bytes", 10_485_760, "tests/api/test_sources.py"),
}


@pytest.mark.parametrize("resource", sorted(LIMITS))
def test_each_limit_is_a_setting_with_a_documented_default(resource: str) -> None:
    name, default, test_file = LIMITS[resource]
    assert getattr(Settings(), name) == default, name
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"| `{name}` | `HELPFASTER_{name.upper()}` | `{default}` |" in readme, name
    assert (ROOT / test_file).is_file(), test_file


@pytest.mark.models
def test_a_chatbot_holds_at_most_max_sources_per_chatbot(tmp_path: Path) -> None:
    settings = models_settings(tmp_path / "data", max_sources_per_chatbot=3)
    key = bootstrap(settings)
    other = cli_create_org(settings, "other-shop")
    with TestClient(create_app(settings)) as client:
        admin = {"x-api-key": key}
        bot, second = create_bot(client, admin), create_bot(client, admin, "Second")
        ids = []
        for i in range(3):
            resp = add_json(
                client, admin, bot, {"type": "text", "title": "T", "content": f"Fact number {i}."}
            )
            assert resp.status_code == 202, resp.text
            ids.append(resp.json()["id"])
        over = add_json(client, admin, bot, {"type": "text", "title": "T", "content": "One too many."})
        assert over.status_code == 409, over.text
        assert_error_body(over.json(), "conflict")
        assert "max_sources_per_chatbot" in over.json()["message"]
        files = {"file": ("more.md", b"# More\n\nStill too many.", "text/markdown")}
        upload = client.post(f"/v1/chatbots/{bot}/sources", files=files, headers=admin)
        assert upload.status_code == 409, upload.text
        # The same content again is the existing source, not a new one: still answered.
        again = add_json(client, admin, bot, {"type": "text", "title": "T", "content": "Fact number 0."})
        assert again.status_code == 200 and again.json()["id"] == ids[0], again.text
        # The limit is per chatbot: others are not affected.
        assert (
            add_json(client, admin, second, {"type": "text", "title": "T", "content": "x y z"}).status_code
            == 202
        )
        other_bot = create_bot(client, other.admin, "Other")
        assert (
            add_json(
                client, other.admin, other_bot, {"type": "text", "title": "T", "content": "a b"}
            ).status_code
            == 202
        )
        ingested(client)
        # Deleting one frees its place; nothing of the refused ones was kept.
        assert client.delete(f"/v1/sources/{ids[1]}", headers=admin).status_code == 204
        assert (
            add_json(
                client, admin, bot, {"type": "text", "title": "T", "content": "Now it fits."}
            ).status_code
            == 202
        )
        listed = client.get(f"/v1/chatbots/{bot}/sources?limit=100", headers=admin).json()["data"]
        assert len(listed) == 3, listed
        uploads = settings.data_path / "uploads" / bot
        ingested(client)
        assert len([p for p in uploads.iterdir() if not p.name.startswith(".")]) == 3
