// Leads: a chatbot's captured leads, one lead with its conversations, CSV export
// (fetched with the session cookie, saved as a file).

import { api, download } from "../api.js";
import { empty, fmtDate, h, mount, notice, noticeBox } from "../dom.js";
import { badge, botPicker, pagedList, roleLabel } from "./common.js";

function leadRow(botId, lead) {
  return h("li.item", { "data-lead-id": lead.id },
    h("div.grow",
      h("a.title", { href: `#/leads/${encodeURIComponent(botId)}/${encodeURIComponent(lead.id)}` },
        lead.name || lead.email || lead.phone || lead.id),
      h("p.muted", [lead.email, lead.phone, lead.company].filter(Boolean).join(" · ") || "No contact fields"),
      h("p.muted", `Captured ${fmtDate(lead.createdAt)}`)));
}

async function detail(box, botId, leadId) {
  const lead = await api.get(`/v1/leads/${encodeURIComponent(leadId)}`);
  const rows = [["Name", lead.name], ["Email", lead.email], ["Phone", lead.phone], ["Company", lead.company],
    ["Captured", fmtDate(lead.createdAt)], ["Updated", fmtDate(lead.updatedAt)]];
  const convs = Array.isArray(lead.conversations) ? lead.conversations : [];
  mount(box,
    h("p.back", h("a", { href: `#/leads/${encodeURIComponent(botId)}` }, "← All leads")),
    h("h2", lead.name || lead.email || lead.id),
    h("dl.meta", rows.map(([k, v]) => [h("dt", k), h("dd", v || "—")])),
    h("h3", "Conversations"),
    convs.length ? convs.map((c) => h("section.card.sub",
      h("p", h("a", { href: `#/inbox/${encodeURIComponent(botId)}/${encodeURIComponent(c.id)}` }, c.id), " ", badge(c.status),
        h("span.muted", ` · ${fmtDate(c.createdAt)}`)),
      h("ol.thread", (Array.isArray(c.messages) ? c.messages : []).map((m) => h(`li.msg.${["user", "assistant", "agent"].includes(m.role) ? m.role : "other"}`,
        h("span.who", roleLabel(m.role)), h("p.text", typeof m.content === "string" ? m.content : "")))))) : empty("No conversations."));
}

export async function render(root, params, ctx) {
  const picker = await botPicker(params.botId, (id) => ctx.navigate(`#/leads/${encodeURIComponent(id)}`));
  root.append(h("h1", "Leads"));
  if (!picker.selected) {
    root.append(picker.el);
    return;
  }
  const botId = picker.selected;
  const out = noticeBox();
  const exportBtn = h("button", { type: "button" }, "Export CSV");
  exportBtn.addEventListener("click", async () => {
    exportBtn.disabled = true;
    try {
      await download(`/v1/chatbots/${encodeURIComponent(botId)}/leads/export`, `leads-${botId}.csv`);
      notice(out, "Exported.");
    } catch (err) {
      notice(out, err, "error");
    } finally {
      exportBtn.disabled = false;
    }
  });
  const list = pagedList({
    path: `/v1/chatbots/${encodeURIComponent(botId)}/leads`,
    renderRow: (l) => leadRow(botId, l),
    emptyText: "No leads yet. Turn on lead capture in the chatbot's settings to ask visitors for contact details.",
  });
  const box = h("section.lead-detail", { "aria-label": "Lead" });
  root.append(h("div.filters", picker.el, h("div.actions", exportBtn)), out,
    h(`div.inbox${params.leadId ? ".has-thread" : ""}`, h("section.conv-list", list.el), box));
  await list.load();
  if (params.leadId) {
    try {
      await detail(box, botId, params.leadId);
    } catch (err) {
      mount(box, h("p.notice.error", { role: "alert" }, err.message));
    }
  } else {
    mount(box, empty("Pick a lead to see its details and conversations."));
  }
}
