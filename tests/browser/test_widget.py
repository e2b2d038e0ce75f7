"""The embeddable widget in headless Chromium: a page on another loopback origin
embeds /widget.js with a publishable key, streams an answer, escalates to a
person who answers from the dashboard inbox; an origin not allowed is refused;
HTML in a reply stays text.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

WIDGET = "[data-hf-widget]"  # the host element; Playwright's CSS pierces its open shadow root
QUESTION = "What are the opening hours of the Oslo office?"
ANSWER = "The Oslo office is open from 8 to 16 on weekdays."


def open_widget(page: Any) -> Any:
    widget = page.locator(WIDGET)
    widget.get_by_role("button", name="Open chat").click()
    expect(widget.get_by_role("dialog")).to_be_visible()
    return widget


def ask(widget: Any, question: str) -> None:
    widget.get_by_label("Your message").fill(question)
    widget.get_by_role("button", name="Send").click()


@pytest.fixture
def bot_with_answer(box: Any) -> dict[str, Any]:
    bot = box.chatbot(f"Widget bot {uuid.uuid4().hex[:6]}", welcomeMessage="Hello from the widget bot!")
    box.qa(bot["id"], QUESTION, ANSWER)
    return bot


def test_the_widget_on_an_allowed_origin_streams_an_answer(
    new_page: Any,
    box: Any,
    live_server: Any,
    bot_with_answer: dict[str, Any],
    embed_site: Any,
    shoot: Any,
    watch: Any,
) -> None:
    site = embed_site("127.0.0.2")
    key = box.publishable_key(bot_with_answer["id"], [site.origin])
    page = new_page(site.origin)
    page.goto(site.widget_page("/help.html", live_server.url, bot_with_answer["id"], key))
    shoot(page, "host-page-closed")
    widget = open_widget(page)
    expect(widget.locator(".msg.assistant").first).to_have_text("Hello from the widget bot!")
    with page.expect_response(lambda r: "/chat" in r.url and r.request.method == "POST") as chat:
        ask(widget, QUESTION)
    assert chat.value.status == 200
    assert "text/event-stream" in chat.value.headers.get("content-type", "")
    answer = widget.locator(".msg.assistant").nth(1)
    expect(answer).to_contain_text(re.compile(r"8|16|Oslo|office", re.I), timeout=60_000)
    expect(widget.locator(".typing")).to_have_count(0)
    for link in widget.locator(".srcs a").all():
        assert re.match(r"https?://", link.get_attribute("href") or "")
    # The host page's styles do not reach into the widget, and the widget's do not leak out.
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).fontFamily").startswith("Georgia")
    bg = page.evaluate("""getComputedStyle(document.querySelector('[data-hf-widget]').shadowRoot
        .querySelector('.panel')).backgroundColor""")
    assert bg == "rgb(255, 255, 255)", bg
    conv = page.evaluate(
        f"JSON.parse(sessionStorage.getItem('hf_widget_{bot_with_answer['id']}')).conversationId"
    )
    assert conv and conv.startswith("conv_")
    shoot(page, "widget-answer")
    assert not watch.script_errors(), watch.errors


def test_the_same_widget_on_an_origin_not_allowed_is_refused(
    new_page: Any,
    box: Any,
    live_server: Any,
    bot_with_answer: dict[str, Any],
    embed_site: Any,
    shoot: Any,
) -> None:
    allowed = embed_site("127.0.0.2")
    other = embed_site("127.0.0.3")
    key = box.publishable_key(bot_with_answer["id"], [allowed.origin])
    page = new_page(other.origin)
    page.goto(other.widget_page("/help.html", live_server.url, bot_with_answer["id"], key))
    widget = open_widget(page)
    ask(widget, QUESTION)
    expect(widget.get_by_role("alert")).to_be_visible(timeout=20_000)
    assert ANSWER not in (widget.locator(".log").inner_text())
    assert widget.locator(".msg.assistant").count() <= 1  # at most the welcome message
    shoot(page, "widget-refused")


def test_a_reply_containing_html_is_shown_as_text(
    new_page: Any,
    box: Any,
    live_server: Any,
    embed_site: Any,
    shoot: Any,
    watch: Any,
) -> None:
    payload = "<img src=x onerror=alert(1)>"
    bot = box.chatbot(f"XSS bot {uuid.uuid4().hex[:6]}")
    box.qa(bot["id"], "What is the secret markup?", f"The secret markup is {payload} exactly.")
    site = embed_site("127.0.0.2")
    key = box.publishable_key(bot["id"], [site.origin])
    page = new_page(site.origin)
    page.goto(site.widget_page("/xss.html", live_server.url, bot["id"], key))
    widget = open_widget(page)
    ask(widget, "What is the secret markup?")
    expect(widget.locator(".log")).to_contain_text("onerror", timeout=60_000)
    expect(widget.locator(".typing")).to_have_count(0)
    assert (
        page.evaluate("document.querySelector('[data-hf-widget]').shadowRoot.querySelectorAll('img').length")
        == 0
    )
    assert page.locator("img").count() == 0
    page.wait_for_timeout(500)
    assert watch.dialogs == []
    shoot(page, "widget-html-as-text")


def test_an_escalated_widget_conversation_gets_the_agents_reply_from_the_inbox(
    new_page: Any,
    box: Any,
    live_server: Any,
    bot_with_answer: dict[str, Any],
    embed_site: Any,
    shoot: Any,
    sign_in: Any,
) -> None:
    site = embed_site("127.0.0.2")
    key = box.publishable_key(bot_with_answer["id"], [site.origin])
    visitor = new_page(site.origin)
    visitor.goto(site.widget_page("/help.html", live_server.url, bot_with_answer["id"], key))
    widget = open_widget(visitor)
    ask(widget, QUESTION)
    expect(widget.locator(".msg.assistant").nth(1)).not_to_be_empty(timeout=60_000)
    expect(widget.locator(".typing")).to_have_count(0)
    widget.get_by_role("button", name="Talk to a person").click()
    expect(widget.locator(".msg.note")).to_be_visible()
    conv_id = visitor.evaluate(
        f"JSON.parse(sessionStorage.getItem('hf_widget_{bot_with_answer['id']}')).conversationId"
    )
    shoot(visitor, "widget-escalated")

    agent = sign_in(new_page())
    agent.goto(f"/#/inbox/{bot_with_answer['id']}")
    first = agent.locator("li[data-conversation-id]").first
    expect(first).to_have_attribute("data-conversation-id", conv_id)  # escalated ones on top
    expect(first).to_have_attribute("data-status", "escalated")
    shoot(agent, "inbox-escalated")
    first.get_by_role("link").click()
    expect(agent.get_by_role("list", name="Messages")).to_contain_text(QUESTION)
    tag = uuid.uuid4().hex[:4]
    reply = f"Hi, this is Kari from support ({tag}). The office also opens on Saturdays."
    agent.get_by_label("Your name (shown to the visitor)").fill("Kari")
    agent.get_by_role("textbox", name="Reply", exact=True).fill(reply)
    agent.get_by_role("button", name="Send reply").click()
    expect(agent.get_by_role("list", name="Messages").locator(".msg.agent")).to_contain_text(reply)
    shoot(agent, "inbox-thread")

    expect(widget.locator(".msg.agent")).to_contain_text(reply, timeout=20_000)
    shoot(visitor, "widget-agent-reply")

    agent.get_by_role("button", name="Resolve / hand back to the bot").click()
    expect(agent.locator(".thread-head .badge")).to_have_text("resolved")
