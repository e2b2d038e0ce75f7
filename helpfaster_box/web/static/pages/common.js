// Pieces shared by several pages: the chatbot picker, paged lists, polling.

import { all, page } from "../api.js";
import { empty, field, h, mount, notice, noticeBox } from "../dom.js";

const LAST_BOT = "hf_dashboard_last_bot";

export function lastBot() {
  try {
    return localStorage.getItem(LAST_BOT);
  } catch {
    return null;
  }
}

export function rememberBot(id) {
  try {
    if (id) localStorage.setItem(LAST_BOT, id);
  } catch {
    /* storage may be disabled */
  }
}

/**
 * A labelled chatbot <select>; resolves {el, bots, selected}. Calls onChange(id).
 * With no chatbots, `el` says so and links to the chatbots page.
 */
export async function botPicker(selected, onChange) {
  const bots = await all("/v1/chatbots");
  if (!bots.length) {
    return {
      el: h("p.empty", "No chatbots yet. ", h("a", { href: "#/" }, "Create one first.")),
      bots,
      selected: null,
    };
  }
  const chosen = bots.some((b) => b.id === selected) ? selected
    : bots.some((b) => b.id === lastBot()) ? lastBot() : bots[0].id;
  const select = h(
    "select",
    { name: "chatbot", onchange: () => onChange(select.value) },
    bots.map((b) => h("option", { value: b.id, selected: b.id === chosen }, b.name || b.id)),
  );
  rememberBot(chosen);
  return { el: field("Chatbot", select), bots, selected: chosen };
}

/**
 * A list that loads page by page: renders rows with renderRow(item) into a
 * container and offers "Load more" while hasMore.
 */
export function pagedList({ path, params, renderRow, emptyText, container = "ul.list" }) {
  const list = h(container);
  const status = noticeBox();
  const more = h("button", { type: "button", hidden: true }, "Load more");
  let cursor = null;
  let count = 0;

  async function load() {
    more.disabled = true;
    try {
      const p = await page(path, { ...params, cursor });
      for (const item of p.data) {
        list.appendChild(renderRow(item));
        count += 1;
      }
      cursor = p.hasMore ? p.nextCursor : null;
      more.hidden = !cursor;
      if (!count) mount(list, empty(emptyText || "Nothing here yet."));
    } catch (err) {
      notice(status, err, "error");
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", load);
  const el = h("div.paged", list, status, more);
  return { el, load, list };
}

/** Repeat fn every ms while `keepGoing()`; returns a stop function. */
export function poll(fn, ms, keepGoing = () => true) {
  let stopped = false;
  let timer = null;
  async function tick() {
    if (stopped) return;
    try {
      await fn();
    } catch {
      /* the next tick tries again */
    }
    if (!stopped && keepGoing()) timer = setTimeout(tick, ms);
  }
  timer = setTimeout(tick, ms);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Message role -> the label a support person reads. */
export function roleLabel(role) {
  return { user: "Visitor", assistant: "Bot", agent: "Agent" }[role] || String(role || "?");
}

/** Status -> a badge. */
export function badge(status) {
  const s = String(status || "unknown");
  return h(`span.badge.s-${s.replace(/[^a-z_-]/gi, "")}`, s);
}

/** The date inputs of a filter bar turned into ISO values (to = that whole day). */
export function dayRange(fromValue, toValue) {
  return { from: fromValue || null, to: toValue || null };
}

export function isoDay(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
