"""The dashboard in headless Chromium against a live serve: sign-in, chatbots,
sources, try it, analytics, keys and webhooks; every page at 1280 and 390 px.

Assertions are on shapes and loose patterns (a cited source, an <svg>, a
whsec_ secret), never on a model's exact prose.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DOC = """# Zorblax 3000 warranty

The Zorblax 3000 coffee machine comes with a warranty of seven years.
The warranty covers the pump, the heater and the grinder.
To claim the warranty, send the serial number to support.
"""


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


def test_signing_in_with_an_api_key_opens_the_dashboard(
    page: Any, live_server: Any, box: Any, shoot: Any, watch: Any
) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to HelpFaster Box")).to_be_visible()
    shoot(page, "sign-in")

    page.get_by_label("API key").fill("hf_live_" + "x" * 32)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()  # the API's message, not a crash
    shoot(page, "sign-in-refused")

    page.get_by_label("API key").fill(live_server.admin_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    has_bots = bool(box.ok(box.http.get("/v1/chatbots"))["data"])
    heading = "Chatbots" if has_bots else "Welcome to HelpFaster Box"
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    shoot(page, "chatbots" if has_bots else "first-run")

    page.reload()  # the session cookie survives a reload; the CSRF token is fetched again
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert live_server.admin_key not in page.content()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to HelpFaster Box")).to_be_visible()
    assert not watch.script_errors(), watch.errors


def test_a_chatbot_created_in_the_dashboard_opens_on_its_sources(
    dashboard: Any, box: Any, shoot: Any
) -> None:
    name = unique("Support bot")
    dashboard.goto("/#/")
    form = dashboard.get_by_role("form", name="Create a chatbot")
    form.get_by_label("Name").fill(name)
    form.get_by_role("button", name="Create chatbot").click()
    expect(dashboard.get_by_role("heading", level=1)).to_have_text(name)
    expect(dashboard).to_have_url(re.compile(r"#/chatbots/bot_[^/]+/sources$"))
    assert any(b["name"] == name for b in box.ok(box.http.get("/v1/chatbots", params={"limit": 100}))["data"])
    shoot(dashboard, "new-chatbot-sources")


def test_an_uploaded_document_becomes_ready(dashboard: Any, box: Any, shoot: Any, tmp_path: Path) -> None:
    bot = box.chatbot(unique("Upload bot"))
    doc = tmp_path / "zorblax-warranty.md"
    doc.write_text(DOC)
    dashboard.goto(f"/#/chatbots/{bot['id']}/sources")
    with dashboard.expect_response(
        lambda r: r.url.endswith(f"/v1/chatbots/{bot['id']}/sources") and r.request.method == "POST"
    ) as uploaded:
        dashboard.locator("#source-file").set_input_files(str(doc))
    assert uploaded.value.status == 202
    source_id = uploaded.value.json()["id"]
    # The title comes from the document's heading, not the file name.
    row = dashboard.locator(f'li[data-source-id="{source_id}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("Zorblax 3000 warranty")
    shoot(dashboard, "sources-indexing")
    expect(row).to_have_attribute("data-status", "ready", timeout=120_000)
    expect(row.locator(".badge")).to_have_text("ready")
    shoot(dashboard, "sources-ready")


def test_the_try_it_pane_streams_an_answer_that_cites_the_document(
    dashboard: Any, box: Any, shoot: Any
) -> None:
    bot = box.chatbot(unique("Try bot"))
    box.text(bot["id"], "Zorblax 3000 warranty", DOC)
    dashboard.goto(f"/#/chatbots/{bot['id']}/try")
    with dashboard.expect_response(lambda r: r.url.endswith(f"/v1/chatbots/{bot['id']}/chat")) as chat:
        dashboard.get_by_label("Your question").fill("How long is the warranty of the Zorblax 3000?")
        dashboard.get_by_role("button", name="Send").click()
    assert "text/event-stream" in chat.value.headers.get("content-type", "")
    cited = dashboard.get_by_role("list", name="Cited sources").last
    expect(cited).to_contain_text("Zorblax 3000 warranty", timeout=60_000)
    # A snippet keeps its line breaks: code lines, and the blank line between two
    # passages of one page that the reply quotes.
    assert cited.locator("blockquote").first.evaluate("e => getComputedStyle(e).whiteSpace") == "pre-line"
    expect(dashboard.locator(".meta").last).to_contain_text("Confidence")
    expect(dashboard.get_by_test_id("answer").last).not_to_be_empty()
    shoot(dashboard, "try-it")


def test_analytics_shows_the_numbers_and_a_daily_chart(dashboard: Any, box: Any, shoot: Any) -> None:
    bot = box.chatbot(unique("Analytics bot"))
    box.text(bot["id"], "Zorblax 3000 warranty", DOC)
    box.chat(bot["id"], "How long is the Zorblax 3000 warranty?")
    dashboard.goto(f"/#/chatbots/{bot['id']}/analytics")
    chart = dashboard.get_by_test_id("daily-chart").locator("svg")
    expect(chart).to_be_visible(timeout=30_000)
    expect(dashboard.locator(".stat", has_text="Conversations").locator(".stat-value")).to_have_text(
        re.compile(r"\d")
    )
    expect(dashboard.get_by_role("heading", name="Topics")).to_be_visible()
    expect(dashboard.get_by_role("heading", name="Knowledge gaps")).to_be_visible()
    shoot(dashboard, "analytics")


def test_a_webhook_secret_is_shown_once(dashboard: Any, shoot: Any) -> None:
    dashboard.goto("/#/settings/webhooks")
    form = dashboard.get_by_role("form", name="Create a webhook")
    form.get_by_label("Endpoint URL").fill(f"http://127.0.0.1:9/hooks/{uuid.uuid4().hex[:8]}")
    for event in (
        "conversation.created",
        "conversation.escalated",
        "lead.captured",
        "message.sent",
    ):
        expect(form.get_by_label(event)).to_be_checked()
    form.get_by_label("lead.captured").uncheck()
    form.get_by_role("button", name="Create webhook").click()
    secret_box = dashboard.get_by_role("textbox", name="Signing secret")
    expect(secret_box).to_have_value(re.compile(r"^whsec_"))
    secret = secret_box.input_value()
    expect(dashboard.get_by_role("button", name="Copy")).to_be_visible()
    shoot(dashboard, "webhook-secret")

    dashboard.reload()
    expect(dashboard.locator("li[data-webhook-id]").first).to_be_visible()
    assert secret not in dashboard.content()
    dashboard.locator("li[data-webhook-id]").first.get_by_role("link", name="Deliveries").click()
    dashboard.get_by_role("button", name="Send test event").click()
    expect(dashboard.locator("li[data-delivery-id]").first).to_be_visible(timeout=15_000)
    shoot(dashboard, "webhook-deliveries")


def test_an_api_key_is_shown_once_and_can_be_revoked(dashboard: Any, shoot: Any, watch: Any) -> None:
    name = unique("CRM")
    dashboard.goto("/#/settings/api-keys")
    form = dashboard.get_by_role("form", name="Create an API key")
    form.get_by_label("Name").fill(name)
    form.get_by_role("button", name="Create API key").click()
    expect(dashboard.get_by_role("textbox", name="New API key")).to_have_value(re.compile(r"^hf_live_"))
    shoot(dashboard, "api-key-created")
    row = dashboard.locator("li[data-key-id]", has_text=name)
    row.get_by_role("button", name=re.compile("Revoke")).click()  # the confirm() is accepted by the watch
    expect(
        dashboard.locator("li[data-key-id]", has_text=name).get_by_role("button", name=re.compile("Revoke"))
    ).to_have_count(0)
    assert any("confirm" in d for d in watch.dialogs)


PAGES = [
    ("chatbots", "/#/"),
    ("bot-settings", "/#/chatbots/{bot}/settings"),
    ("bot-sources", "/#/chatbots/{bot}/sources"),
    ("bot-try", "/#/chatbots/{bot}/try"),
    ("bot-analytics", "/#/chatbots/{bot}/analytics"),
    ("bot-widget-keys", "/#/chatbots/{bot}/keys"),
    ("inbox", "/#/inbox/{bot}"),
    ("leads", "/#/leads/{bot}"),
    ("settings-api-keys", "/#/settings/api-keys"),
    ("settings-webhooks", "/#/settings/webhooks"),
]


def test_every_page_renders_at_both_widths_without_script_errors(
    dashboard: Any, box: Any, shoot: Any, watch: Any
) -> None:
    bot = box.chatbot(unique("Tour bot"), leadCapture={"enabled": True, "fields": ["name", "email"]})
    box.qa(bot["id"], "What are your opening hours?", "We are open 9 to 17 on weekdays.")
    box.chat(bot["id"], "What are your opening hours?")
    for name, path in PAGES:
        dashboard.goto(path.format(bot=bot["id"]))
        expect(dashboard.get_by_role("heading", level=1)).to_be_visible()
        dashboard.wait_for_load_state("networkidle")
        assert not dashboard.get_by_role("alert").count(), (
            name,
            dashboard.get_by_role("alert").all_inner_texts(),
        )
        shoot(dashboard, name)
    # Phone width: no page scrolls sideways.
    dashboard.set_viewport_size({"width": 390, "height": 844})
    for name, path in PAGES:
        dashboard.goto(path.format(bot=bot["id"]))
        dashboard.wait_for_load_state("networkidle")
        overflow = dashboard.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (name, overflow)
    assert not watch.script_errors(), watch.errors


def test_the_dashboard_is_usable_from_the_keyboard(page: Any, live_server: Any) -> None:
    page.goto("/")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(live_server.admin_key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.locator("main")).to_be_focused()  # a new page takes focus
    page.locator("#skip-link").focus()
    reached = []
    for _ in range(8):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate("document.activeElement.tagName + ':' + document.activeElement.textContent.trim()")
        )
    assert any(r.startswith("A:Inbox") for r in reached), reached
    assert any(r.startswith("BUTTON:Sign out") for r in reached), reached
    page.locator("#skip-link").focus()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter(el => el.type !== 'hidden' && !el.labels?.length && !el.getAttribute('aria-label'))
        .map(el => el.name || el.outerHTML.slice(0, 80))""")
    assert unlabelled == []
