// Inbox: a chatbot's conversations filtered by date and status, escalated ones
// on top; the thread view with visitor / bot / agent messages, the agent's
// reply box, resolve (hand back to the bot) and escalate. The open thread is
// polled so new visitor messages show up.

import { api, page } from "../api.js";
import { empty, field, fmtDate, h, linkOrText, mount, notice, noticeBox } from "../dom.js";
import { badge, botPicker, poll, rememberBot, roleLabel } from "./common.js";

const AUTHOR = "hf_dashboard_agent_name";

function convRow(botId, c, selected) {
  const who = (c.visitor && (c.visitor.name || c.visitor.email)) || "Anonymous visitor";
  return h("li.item.conv", { "data-conversation-id": c.id, "data-status": c.status || "" },
    h("div.grow",
      h("a.title", {
        href: `#/inbox/${encodeURIComponent(botId)}/${encodeURIComponent(c.id)}`,
        "aria-current": c.id === selected ? "true" : null,
      }, who),
      h("p.muted", `${c.messageCount ?? "?"} messages · ${fmtDate(c.updatedAt || c.createdAt)}`),
      c.escalationReason ? h("p.muted", `Escalated: ${c.escalationReason}`) : null),
    badge(c.status));
}

function messageEl(m) {
  const role = ["user", "assistant", "agent"].includes(m.role) ? m.role : "other";
  const sources = Array.isArray(m.sources) ? m.sources : [];
  return h(`li.msg.${role}`, { "data-message-id": m.id || "" },
    h("span.who", m.role === "agent" && m.author ? `Agent · ${m.author}` : roleLabel(m.role)),
    h("p.text", typeof m.content === "string" ? m.content : ""),
    sources.length ? h("p.muted", "Sources: ", sources.map((s, i) => [i ? ", " : "", linkOrText(s && s.url, (s && (s.title || s.url)) || "source")])) : null,
    h("span.time", fmtDate(m.createdAt)),
    m.answered === false ? h("span.badge.s-declined", "not answered") : null);
}

async function thread(box, convId, onChanged) {
  const conv = await api.get(`/v1/conversations/${encodeURIComponent(convId)}`);
  const list = h("ol.thread", { "aria-label": "Messages", "aria-live": "polite" });
  const seen = new Set();
  const head = h("div.thread-head");
  function renderHead(c) {
    const v = c.visitor || {};
    mount(head, h("h2", (v.name || v.email) ? `${v.name || ""} ${v.email ? `<${v.email}>` : ""}`.trim() : "Anonymous visitor"),
      badge(c.status), h("p.muted.mono", c.id));
  }
  function addMessages(c) {
    for (const m of Array.isArray(c.messages) ? c.messages : []) {
      const key = m.id || `${m.role}:${m.createdAt}:${m.content}`;
      if (seen.has(key)) continue;
      seen.add(key);
      list.append(messageEl(m));
    }
    if (!list.children.length) mount(list, empty("No messages."));
  }
  renderHead(conv);
  addMessages(conv);

  const out = noticeBox();
  const author = h("input", { name: "author", maxlength: 200, autocomplete: "name" });
  try {
    author.value = localStorage.getItem(AUTHOR) || "";
  } catch { /* storage disabled */ }
  const content = h("textarea", { name: "content", rows: 3, required: true, id: "reply-content" });
  const send = h("button.primary", { type: "submit" }, "Send reply");
  const resolve = h("button", { type: "button" }, "Resolve / hand back to the bot");
  const escalate = h("button", { type: "button" }, "Escalate");
  const status = { value: conv.status };
  escalate.hidden = status.value !== "open";

  async function reload() {
    const c = await api.get(`/v1/conversations/${encodeURIComponent(convId)}`);
    status.value = c.status;
    escalate.hidden = c.status !== "open";
    renderHead(c);
    addMessages(c);
  }
  const form = h("form.composer", {
    "aria-label": "Reply as an agent",
    onsubmit: async (e) => {
      e.preventDefault();
      const text = content.value.trim();
      if (!text) return;
      send.disabled = true;
      try {
        const body = { content: text };
        if (author.value.trim()) {
          body.author = author.value.trim();
          try {
            localStorage.setItem(AUTHOR, body.author);
          } catch { /* storage disabled */ }
        }
        await api.post(`/v1/conversations/${encodeURIComponent(convId)}/messages`, body);
        content.value = "";
        notice(out, "Sent.");
        await reload();
      } catch (err) {
        notice(out, err, "error");
      } finally {
        send.disabled = false;
      }
    },
  }, field("Your name (shown to the visitor)", author), field("Reply", content), out,
  h("div.actions", send, resolve, escalate));
  const act = (button, path, done) => button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api.post(`/v1/conversations/${encodeURIComponent(convId)}/${path}`);
      notice(out, done);
      await reload();
      onChanged();
    } catch (err) {
      notice(out, err, "error");
    } finally {
      button.disabled = false;
    }
  });
  act(resolve, "resolve", "Resolved: the bot answers this visitor again.");
  act(escalate, "escalate", "Escalated.");
  mount(box, h("p.back", h("a", { href: location.hash.replace(/\/[^/]+$/, "") }, "← All conversations")), head, list, form);
  return poll(reload, 5000);
}

export async function render(root, params, ctx) {
  const picker = await botPicker(params.botId, (id) => ctx.navigate(`#/inbox/${encodeURIComponent(id)}`));
  root.append(h("h1", "Inbox"));
  if (!picker.selected) {
    root.append(picker.el);
    return undefined;
  }
  const botId = picker.selected;
  rememberBot(botId);
  const statusSel = h("select", { name: "status" },
    [["", "All (escalated first)"], ["escalated", "Escalated"], ["open", "Open"], ["resolved", "Resolved"]]
      .map(([v, l]) => h("option", { value: v, selected: (params.status || "") === v }, l)));
  const from = h("input", { type: "date", name: "from", value: params.from || "" });
  const to = h("input", { type: "date", name: "to", value: params.to || "" });
  const list = h("ul.list", { "aria-label": "Conversations" });
  const out = noticeBox();
  const more = h("button", { type: "button", hidden: true }, "Load more");
  const threadBox = h("section.thread-box", { "aria-label": "Conversation" });
  let cursor = null;
  const shown = new Set();
  const path = `/v1/chatbots/${encodeURIComponent(botId)}/conversations`;
  const filters = () => ({ from: from.value || null, to: to.value || null });

  async function load(reset) {
    try {
      if (reset) {
        cursor = null;
        shown.clear();
        list.replaceChildren();
        if (!statusSel.value) {
          // Escalated ones first, then everything else newest first.
          const esc = await page(path, { ...filters(), status: "escalated", limit: 100 });
          esc.data.forEach((c) => {
            shown.add(c.id);
            list.append(convRow(botId, c, params.convId));
          });
        }
      }
      const p = await page(path, { ...filters(), status: statusSel.value || null, limit: 20, cursor });
      p.data.filter((c) => !shown.has(c.id)).forEach((c) => {
        shown.add(c.id);
        list.append(convRow(botId, c, params.convId));
      });
      cursor = p.hasMore ? p.nextCursor : null;
      more.hidden = !cursor;
      if (!list.children.length) mount(list, empty("No conversations match."));
    } catch (err) {
      notice(out, err, "error");
    }
  }
  more.addEventListener("click", () => load(false));
  const filterForm = h("form.filters", {
    "aria-label": "Filter conversations",
    onsubmit: (e) => {
      e.preventDefault();
      load(true);
    },
  }, picker.el, field("Status", statusSel), field("From", from), field("To", to),
  h("div.actions", h("button", { type: "submit" }, "Filter")));
  statusSel.addEventListener("change", () => load(true));

  const layout = h(`div.inbox${params.convId ? ".has-thread" : ""}`,
    h("section.conv-list", { "aria-label": "Conversation list" }, list, out, more), threadBox);
  root.append(filterForm, layout);
  await load(true);
  let stop = null;
  if (params.convId) {
    try {
      stop = await thread(threadBox, params.convId, () => load(true));
    } catch (err) {
      mount(threadBox, h("p.notice.error", { role: "alert" }, err.message));
    }
  } else {
    mount(threadBox, empty("Pick a conversation to read it and reply."));
  }
  return () => stop && stop();
}
