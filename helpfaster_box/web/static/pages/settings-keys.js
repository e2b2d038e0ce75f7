// Settings > API keys: create (key shown once, copy button), list, revoke.

import { api } from "../api.js";
import { field, fmtDate, h, mount, notice, noticeBox, shownOnce } from "../dom.js";
import { pagedList } from "./common.js";
import { adminNote, settingsNav } from "./settings-nav.js";

export async function render(root, _params, ctx) {
  const out = noticeBox();
  const created = h("div", { "aria-live": "polite" });
  let list;

  function row(k) {
    const revoke = h("button.small.danger", { type: "button", "aria-label": `Revoke ${k.name || k.prefix || k.id}` }, "Revoke");
    revoke.addEventListener("click", async () => {
      if (!confirm(`Revoke ${k.name || k.id}? Apps using it stop working at once.`)) return;
      revoke.disabled = true;
      try {
        await api.del(`/v1/api-keys/${encodeURIComponent(k.id)}`);
        reload();
      } catch (err) {
        notice(out, err, "error");
        revoke.disabled = false;
      }
    });
    return h("li.item", { "data-key-id": k.id },
      h("div.grow",
        h("span.title", k.name || "(no name)"),
        h("p.mono.muted", `${k.prefix || ""}…`),
        h("p.muted", `${k.role || "?"} · created ${fmtDate(k.createdAt)}${k.revokedAt ? ` · revoked ${fmtDate(k.revokedAt)}` : ""}`)),
      k.revokedAt ? h("span.badge.s-revoked", "revoked") : revoke);
  }
  const listBox = h("section.card", h("h2", "Keys"));
  function reload() {
    list = pagedList({ path: "/v1/api-keys", renderRow: row, emptyText: "No keys." });
    mount(listBox, h("h2", "Keys"), list.el);
    list.load();
  }

  const name = h("input", { name: "name", maxlength: 200, required: true, placeholder: "CRM integration" });
  const role = h("select", { name: "role" }, h("option", { value: "member" }, "member (chat, knowledge, conversations)"),
    h("option", { value: "admin" }, "admin (also keys and webhooks)"));
  const submit = h("button.primary", { type: "submit" }, "Create API key");
  const form = h("form.card", {
    "aria-label": "Create an API key",
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      try {
        const k = await api.post("/v1/api-keys", { name: name.value.trim(), role: role.value });
        form.reset();
        notice(out, "");
        mount(created, shownOnce("New API key", k.key || "", "Store it now: it is not shown again."));
        reload();
      } catch (err) {
        notice(out, err, "error");
      } finally {
        submit.disabled = false;
      }
    },
  }, h("h2", "New API key"), field("Name", name), field("Role", role), out, h("div.actions", submit));

  root.append(h("h1", "Settings"), settingsNav("api-keys"), adminNote(ctx.session), form, created, listBox);
  reload();
}
