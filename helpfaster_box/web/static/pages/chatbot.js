// One chatbot: a header with its tabs; each tab is its own module.

import { api } from "../api.js";
import { h } from "../dom.js";
import { rememberBot } from "./common.js";

const TABS = [
  ["settings", "Settings", "bot-settings"],
  ["sources", "Sources", "bot-sources"],
  ["try", "Try it", "bot-try"],
  ["analytics", "Analytics", "bot-analytics"],
  ["keys", "Widget keys", "bot-keys"],
];

export async function render(root, params, ctx) {
  const botId = params.botId;
  const tab = TABS.find((t) => t[0] === params.tab) || TABS[0];
  const bot = await api.get(`/v1/chatbots/${encodeURIComponent(botId)}`);
  rememberBot(bot.id);
  const base = `#/chatbots/${encodeURIComponent(bot.id)}`;
  const body = h("section.tab-body", { id: "tab-body", "aria-label": tab[1] });
  root.append(
    h("p.crumbs", h("a", { href: "#/" }, "Chatbots"), " / "),
    h("h1", bot.name || bot.id),
    h("p.muted.mono", bot.id),
    h(
      "nav.tabs",
      { "aria-label": "Chatbot sections" },
      TABS.map(([key, label]) => h("a", {
        href: `${base}/${key}`,
        "aria-current": key === tab[0] ? "page" : null,
      }, label)),
      h("a", { href: `#/inbox/${encodeURIComponent(bot.id)}` }, "Inbox"),
      h("a", { href: `#/leads/${encodeURIComponent(bot.id)}` }, "Leads"),
    ),
    body,
  );
  const mod = await import(`./${tab[2]}.js`);
  if (ctx.stale()) return undefined;
  return mod.render(body, bot, ctx);
}
