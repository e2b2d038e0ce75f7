// Settings > Webhooks: create with event selection (secret shown once), list,
// enable/disable, test, delete; one webhook's delivery log with retry.

import { all, api } from "../api.js";
import { check, field, fmtDate, h, mount, notice, noticeBox, shownOnce } from "../dom.js";
import { badge, pagedList } from "./common.js";
import { adminNote, settingsNav } from "./settings-nav.js";

export const EVENTS = ["conversation.created", "conversation.escalated", "lead.captured", "message.sent"];

function deliveryRow(d, out, reload) {
  const retry = h("button.small", { type: "button", "aria-label": `Retry delivery ${d.id}` }, "Retry");
  retry.addEventListener("click", async () => {
    retry.disabled = true;
    try {
      await api.post(`/v1/webhook-deliveries/${encodeURIComponent(d.id)}/retry`);
      notice(out, "Queued for delivery.");
      setTimeout(reload, 1500);
    } catch (err) {
      notice(out, err, "error");
    } finally {
      retry.disabled = false;
    }
  });
  const attempts = Array.isArray(d.attempts) ? d.attempts : [];
  return h("li.item", { "data-delivery-id": d.id },
    h("div.grow",
      h("span.title", d.eventType || "event"),
      h("p.muted.mono", d.eventId || d.id),
      h("p.muted", `${attempts.length} attempt${attempts.length === 1 ? "" : "s"}`,
        d.lastStatusCode ? ` · last HTTP ${d.lastStatusCode}` : "",
        d.nextAttemptAt ? ` · next try ${fmtDate(d.nextAttemptAt)}` : "",
        ` · ${fmtDate(d.createdAt)}`),
      d.lastError ? h("p.notice.error", d.lastError) : null,
      attempts.length ? h("details", h("summary", "Attempts"), h("ol", attempts.map((a) => h("li",
        `${fmtDate(a.attemptedAt)}: ${a.statusCode ? `HTTP ${a.statusCode}` : "no response"}`,
        a.latencyMs !== undefined ? ` in ${a.latencyMs} ms` : "", a.error ? ` — ${a.error}` : "")))) : null),
    badge(d.status), retry);
}

async function detail(root, id) {
  const hook = await api.get(`/v1/webhooks/${encodeURIComponent(id)}`);
  const out = noticeBox();
  const box = h("div");
  const reload = () => {
    const list = pagedList({
      path: `/v1/webhooks/${encodeURIComponent(id)}/deliveries`,
      renderRow: (d) => deliveryRow(d, out, reload),
      emptyText: "No deliveries yet. Send a test event.",
    });
    mount(box, list.el);
    list.load();
  };
  const test = h("button", { type: "button" }, "Send test event");
  test.addEventListener("click", async () => {
    test.disabled = true;
    try {
      await api.post(`/v1/webhooks/${encodeURIComponent(id)}/test`);
      notice(out, "Test event queued.");
      setTimeout(reload, 1500);
    } catch (err) {
      notice(out, err, "error");
    } finally {
      test.disabled = false;
    }
  });
  const refresh = h("button", { type: "button", onclick: reload }, "Refresh");
  root.append(
    h("p.back", h("a", { href: "#/settings/webhooks" }, "← All webhooks")),
    h("section.card", h("h2", hook.url || hook.id), h("p.muted", (hook.events || []).join(", ")),
      hook.enabled === false ? h("p.notice.warn", `Disabled: ${hook.disabledReason || "by an administrator"}`) : null,
      out, h("div.actions", test, refresh), h("h3", "Delivery log"), box),
  );
  reload();
}

function hookRow(w, out, reload) {
  const test = h("button.small", { type: "button", "aria-label": `Send a test event to ${w.url}` }, "Test");
  const toggle = h("button.small", { type: "button" }, w.enabled === false ? "Enable" : "Disable");
  const del = h("button.small.danger", { type: "button", "aria-label": `Delete webhook ${w.url}` }, "Delete");
  const run = (btn, fn, msg) => btn.addEventListener("click", async () => {
    btn.disabled = true;
    try {
      await fn();
      if (msg) notice(out, msg);
      reload();
    } catch (err) {
      notice(out, err, "error");
    } finally {
      btn.disabled = false;
    }
  });
  const path = `/v1/webhooks/${encodeURIComponent(w.id)}`;
  run(test, () => api.post(`${path}/test`), "Test event queued; see the delivery log.");
  run(toggle, () => api.patch(path, { enabled: w.enabled === false }));
  run(del, async () => {
    if (confirm(`Delete the webhook to ${w.url}?`)) await api.del(path);
  });
  return h("li.item", { "data-webhook-id": w.id },
    h("div.grow",
      h("a.title", { href: `#/settings/webhooks/${encodeURIComponent(w.id)}` }, w.url || w.id),
      w.description ? h("p", w.description) : null,
      h("p.muted", (Array.isArray(w.events) ? w.events : []).join(", ")),
      h("p.muted", w.lastSuccessAt ? `Last success ${fmtDate(w.lastSuccessAt)}` : "No successful delivery yet",
        w.consecutiveFailures ? ` · ${w.consecutiveFailures} failures in a row` : "")),
    badge(w.enabled === false ? "disabled" : "enabled"),
    h("div.links", test, toggle, del, h("a", { href: `#/settings/webhooks/${encodeURIComponent(w.id)}` }, "Deliveries")));
}

export async function render(root, params, ctx) {
  root.append(h("h1", "Settings"), settingsNav("webhooks"), adminNote(ctx.session));
  if (params.webhookId) {
    await detail(root, params.webhookId);
    return;
  }
  const out = noticeBox();
  const created = h("div", { "aria-live": "polite" });
  const listBox = h("section.card");
  const reload = () => {
    const list = pagedList({ path: "/v1/webhooks", renderRow: (w) => hookRow(w, out, reload), emptyText: "No webhooks yet." });
    mount(listBox, h("h2", "Webhooks"), list.el);
    list.load();
  };

  const url = h("input", { name: "url", type: "url", required: true, placeholder: "https://crm.intranet/hooks/helpfaster" });
  const description = h("input", { name: "description", maxlength: 500 });
  const events = EVENTS.map((e) => check(e, "events", true, e));
  let bots = [];
  try {
    bots = await all("/v1/chatbots");
  } catch { /* the filter is optional */ }
  const botChecks = bots.map((b) => check(b.name || b.id, "chatbotIds", false, b.id));
  const submit = h("button.primary", { type: "submit" }, "Create webhook");
  const form = h("form.card", {
    "aria-label": "Create a webhook",
    onsubmit: async (e) => {
      e.preventDefault();
      const chosen = events.map((w) => w.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      if (!chosen.length) {
        notice(out, "Pick at least one event.", "error");
        return;
      }
      const chatbotIds = botChecks.map((w) => w.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      const body = { url: url.value.trim(), events: chosen };
      if (description.value.trim()) body.description = description.value.trim();
      if (chatbotIds.length) body.chatbotIds = chatbotIds;
      submit.disabled = true;
      try {
        const w = await api.post("/v1/webhooks", body);
        form.reset();
        notice(out, "");
        mount(created, shownOnce("Signing secret", w.secret || "",
          "Use it to verify the webhook-signature header (Standard Webhooks). It is not shown again."));
        reload();
      } catch (err) {
        notice(out, err, "error");
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("h2", "New webhook"),
  field("Endpoint URL", url),
  field("Description", description),
  h("fieldset", h("legend", "Events"), h("div.checks", events)),
  bots.length ? h("fieldset", h("legend", "Only these chatbots (none checked = all)"), h("div.checks", botChecks)) : null,
  out, h("div.actions", submit));
  root.append(form, created, listBox);
  reload();
}
