// "Try it": a streaming chat pane against the chatbot, showing for each answer
// the cited sources, confidence, whether it was answered, and why it was declined.

import { streamChat } from "../api.js";
import { fmtPct, h, linkOrText, notice, noticeBox } from "../dom.js";

function sourcesList(sources) {
  if (!Array.isArray(sources) || !sources.length) return h("p.muted", "No sources cited.");
  return h("ol.sources", { "aria-label": "Cited sources" }, sources.map((s) => h(
    "li",
    linkOrText(s && s.url, (s && (s.title || s.url)) || "Untitled source"),
    s && s.snippet ? h("blockquote", s.snippet) : null,
  )));
}

function meta(done) {
  const items = [
    ["Answered", done.answered === undefined ? "—" : done.answered ? "yes" : "no"],
    ["Confidence", typeof done.confidence === "number" ? fmtPct(done.confidence) : "—"],
  ];
  if (done.declineReason) items.push(["Declined because", String(done.declineReason)]);
  if (done.escalated) items.push(["Escalated", "yes: the conversation is in the inbox"]);
  return h("dl.meta", items.map(([k, v]) => [h("dt", k), h("dd", v)]));
}

export function render(root, bot) {
  let conversationId = null;
  let controller = null;
  const log = h("div.chat-log", { role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const input = h("textarea", { name: "message", rows: 2, required: true, maxlength: 4000, id: "try-message" });
  const out = noticeBox();
  const send = h("button.primary", { type: "submit" }, "Send");
  const reset = h("button", { type: "button" }, "New conversation");
  const convLabel = h("p.muted.mono", "New conversation");

  reset.addEventListener("click", () => {
    if (controller) controller.abort();
    conversationId = null;
    log.replaceChildren();
    convLabel.textContent = "New conversation";
    notice(out, "");
  });

  async function ask(message) {
    log.append(h("div.msg.user", h("span.who", "You"), h("p.text", message)));
    const text = h("p.text", { "data-testid": "answer" });
    const details = h("div.details");
    const bubble = h("div.msg.assistant.streaming", h("span.who", "Bot"), text, details);
    log.append(bubble);
    controller = new AbortController();
    try {
      const done = await streamChat(bot.id, { message, ...(conversationId ? { conversationId } : {}) },
        (t) => {
          text.textContent += t;
          log.scrollTop = log.scrollHeight;
        }, controller.signal);
      if (typeof done.reply === "string") text.textContent = done.reply;
      if (done.conversationId) {
        conversationId = done.conversationId;
        convLabel.replaceChildren("Conversation ",
          h("a", { href: `#/inbox/${encodeURIComponent(bot.id)}/${encodeURIComponent(conversationId)}` }, conversationId));
      }
      details.append(meta(done), h("h3", "Sources"), sourcesList(done.sources));
    } catch (err) {
      if (err.name === "AbortError") return;
      bubble.classList.add("failed");
      notice(out, err, "error");
    } finally {
      bubble.classList.remove("streaming");
      controller = null;
      log.scrollTop = log.scrollHeight;
    }
  }

  const form = h("form.composer", {
    "aria-label": "Ask the chatbot",
    onsubmit: async (e) => {
      e.preventDefault();
      const message = input.value.trim();
      if (!message) return;
      input.value = "";
      send.disabled = true;
      notice(out, "");
      await ask(message);
      send.disabled = false;
      input.focus();
    },
  }, h("label", { for: input.id }, "Your question"), input, h("div.actions", send, reset));
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  root.append(h("section.card.try",
    h("h2", "Try it"),
    h("p.muted", "Ask what a visitor would ask. Answers stream in; each shows the sources it cites, the confidence and, when the bot declines, why."),
    convLabel, log, out, form));
  if (bot.welcomeMessage) log.append(h("div.msg.assistant", h("span.who", "Bot"), h("p.text", bot.welcomeMessage)));
  return () => controller && controller.abort();
}
