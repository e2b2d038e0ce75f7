// The Settings sub-navigation.

import { h } from "../dom.js";

export function settingsNav(current) {
  return h("nav.tabs", { "aria-label": "Settings sections" },
    [["api-keys", "API keys"], ["webhooks", "Webhooks"]].map(([k, label]) =>
      h("a", { href: `#/settings/${k}`, "aria-current": k === current ? "page" : null }, label)));
}

export function adminNote(session) {
  return session.role && session.role !== "admin"
    ? h("p.notice.warn", { role: "status" }, "Only admin keys may manage this; you are signed in with a member key.")
    : null;
}
