// Publishable widget keys (hf_pub_) of a chatbot: create with allowed origins
// (key and the embed snippet shown once), list, revoke.

import { all, api } from "../api.js";
import { empty, field, fmtDate, h, mount, notice, noticeBox, shownOnce } from "../dom.js";

export function parseOrigins(text) {
  const origins = [];
  const bad = [];
  for (const raw of text.split(/[\s,]+/)) {
    if (!raw) continue;
    try {
      const u = new URL(raw);
      if ((u.protocol === "http:" || u.protocol === "https:") && (u.pathname === "/" || u.pathname === "")) origins.push(u.origin);
      else bad.push(raw);
    } catch {
      bad.push(raw);
    }
  }
  return { origins, bad };
}

export function embedSnippet(botId, key) {
  const src = new URL("/widget.js", location.href).href;
  return `<script src="${src}" data-chatbot="${botId}" data-key="${key}" async></script>`;
}

export async function render(root, bot) {
  const path = `/v1/chatbots/${encodeURIComponent(bot.id)}/publishable-keys`;
  const list = h("ul.list", { "aria-label": "Publishable keys" });
  const out = noticeBox();
  const created = h("div", { "aria-live": "polite" });

  async function refresh() {
    const keys = await all(path);
    if (!keys.length) {
      mount(list, empty("No widget keys yet."));
      return;
    }
    mount(list, keys.map((k) => {
      const revoke = h("button.small.danger", { type: "button", "aria-label": `Revoke ${k.name || k.id}` }, "Revoke");
      revoke.addEventListener("click", async () => {
        if (!confirm(`Revoke ${k.name || k.id}? Sites using it stop working at once.`)) return;
        revoke.disabled = true;
        try {
          await api.del(`${path}/${encodeURIComponent(k.id)}`);
          await refresh();
        } catch (err) {
          notice(out, err, "error");
          revoke.disabled = false;
        }
      });
      const origins = Array.isArray(k.allowedOrigins) ? k.allowedOrigins : [];
      return h("li.item",
        h("div.grow",
          h("span.title", k.name || k.id),
          h("p.mono.muted", `${k.prefix || "hf_pub_"}…`),
          h("p", "Allowed origins: ", origins.length ? origins.join(", ") : "none"),
          h("p.muted", `Created ${fmtDate(k.createdAt)}${k.revokedAt ? ` · revoked ${fmtDate(k.revokedAt)}` : ""}`)),
        k.revokedAt ? h("span.badge", "revoked") : revoke);
    }));
  }

  const name = h("input", { name: "name", required: true, maxlength: 200, placeholder: "Intranet help page" });
  const originsEl = h("textarea", { name: "allowedOrigins", rows: 3, required: true, placeholder: "https://intranet.example.com" });
  const submit = h("button.primary", { type: "submit" }, "Create widget key");
  const form = h("form.card", {
    "aria-label": "Create a widget key",
    onsubmit: async (e) => {
      e.preventDefault();
      const { origins, bad } = parseOrigins(originsEl.value);
      if (bad.length || !origins.length) {
        notice(out, bad.length ? `Not an origin (scheme://host[:port]): ${bad.join(", ")}` : "Give at least one origin.", "error");
        return;
      }
      submit.disabled = true;
      try {
        const key = await api.post(path, { name: name.value.trim(), allowedOrigins: origins });
        form.reset();
        notice(out, "");
        mount(created,
          shownOnce("New widget key", key.key || "", "Store it now: it is not shown again."),
          shownOnce("Embed code", embedSnippet(bot.id, key.key || ""), "Paste this into the pages of the allowed origins."));
        await refresh();
      } catch (err) {
        notice(out, err, "error");
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("h2", "Widget keys"),
  h("p.muted", "A publishable key lets the chat widget talk to this chatbot only, and only from the origins you list. It is safe to put in a web page."),
  field("Name", name),
  field("Allowed origins", originsEl, "One per line, e.g. https://intranet.example.com or http://localhost:3000"),
  out, h("div.actions", submit));

  root.append(form, created, h("section.card", h("h2", "Keys"), list));
  await refresh();
}
