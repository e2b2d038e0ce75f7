// Analytics: summary numbers for a date range, the daily chart, topics with
// example questions (and a refresh), knowledge gaps with "add as Q&A".
// Every field is read defensively: a missing or new field shows "—", never an error.

import { api, page } from "../api.js";
import { dailyChart } from "../chart.js";
import { empty, field, fmtDate, fmtNum, fmtPct, get, h, mount, notice, noticeBox } from "../dom.js";
import { isoDay } from "./common.js";

function card(label, value, sub) {
  return h("div.stat", h("span.stat-label", label), h("span.stat-value", value), sub ? h("span.muted", sub) : null);
}

function summary(t) {
  const msgs = get(t, "messages", {});
  const fb = get(t, "feedback", {});
  const msgTotal = typeof msgs === "number" ? msgs
    : ["visitor", "bot", "agent"].reduce((a, k) => a + (Number(msgs[k]) || 0), 0);
  return h("div.stats",
    card("Conversations", fmtNum(get(t, "conversations"))),
    card("Messages", fmtNum(msgTotal), typeof msgs === "object"
      ? `${fmtNum(msgs.visitor)} visitor · ${fmtNum(msgs.bot)} bot · ${fmtNum(msgs.agent)} agent` : null),
    card("Unique visitors", fmtNum(get(t, "uniqueVisitors"))),
    card("Leads", fmtNum(get(t, "leads"))),
    card("Escalations", fmtNum(get(t, "escalations"))),
    card("Answered", fmtPct(get(t, "answeredRate"))),
    card("Satisfaction", fmtPct(get(t, "satisfactionRate")), `${fmtNum(fb.up)} thumbs up · ${fmtNum(fb.down)} down`),
    card("Latency p50 / p95", `${fmtNum(get(t, "latencyMs.p50"))} / ${fmtNum(get(t, "latencyMs.p95"))} ms`),
    card("First token p50", `${fmtNum(get(t, "ttftMs.p50"))} ms`),
    card("Messages per conversation", fmtNum(get(t, "avgMessagesPerConversation"), 1)));
}

function topicsSection(bot) {
  const base = `/v1/chatbots/${encodeURIComponent(bot.id)}/analytics/topics`;
  const body = h("div");
  const out = noticeBox();
  const refresh = h("button", { type: "button" }, "Recompute topics");
  async function load() {
    const res = await api.get(base);
    const topics = Array.isArray(res && res.data) ? res.data : [];
    mount(body,
      h("p.muted", res && res.computedAt ? `Computed ${fmtDate(res.computedAt)}` : "Not computed yet."),
      topics.length ? h("ul.list", topics.map((tp) => h("li.item.topic",
        h("div.grow",
          h("span.title", tp.label || "Topic"),
          h("p.muted", `${fmtNum(tp.conversations)} conversations · ${fmtPct(tp.share)} of all · answered ${fmtPct(tp.answeredRate)}`),
          Array.isArray(tp.keywords) && tp.keywords.length ? h("p.keywords", tp.keywords.map(String).join(", ")) : null,
          Array.isArray(tp.examples) && tp.examples.length
            ? h("details", h("summary", "Example questions"), h("ul", tp.examples.map((q) => h("li", typeof q === "string" ? q : get(q, "question", JSON.stringify(q))))))
            : null)))) : empty("No topics yet: they appear once visitors have asked questions."));
  }
  refresh.addEventListener("click", async () => {
    refresh.disabled = true;
    try {
      await api.post(`${base}/refresh`);
      notice(out, "Recomputing; the list updates in a few seconds.");
      setTimeout(() => load().catch((e) => notice(out, e, "error")), 3000);
    } catch (err) {
      notice(out, err, "error");
    } finally {
      refresh.disabled = false;
    }
  });
  load().catch((err) => notice(out, err, "error"));
  return h("section.card", h("h2", "Topics"), body, out, h("div.actions", refresh));
}

function gapRow(bot, gap) {
  const answer = h("textarea", { name: "answer", rows: 3 });
  answer.value = gap.answer || "";
  const out = noticeBox();
  const add = h("button", { type: "submit" }, "Add as Q&A");
  const form = h("form.sub", {
    "aria-label": `Answer: ${gap.question || ""}`,
    onsubmit: async (e) => {
      e.preventDefault();
      add.disabled = true;
      try {
        const body = answer.value.trim() ? { answer: answer.value.trim() } : {};
        await api.post(`/v1/chatbots/${encodeURIComponent(bot.id)}/analytics/gaps/${encodeURIComponent(gap.id)}/resolve`, body);
        notice(out, "Added as a Q&A source; it is being indexed.");
        add.textContent = "Added";
      } catch (err) {
        notice(out, err, "error");
        add.disabled = false;
      }
    },
  }, field("Answer", answer, gap.answer ? "A person's answer from the inbox; edit it if needed." : "Write the answer the bot should give."), out, h("div.actions", add));
  const convs = Array.isArray(gap.conversationIds) ? gap.conversationIds.slice(0, 5) : [];
  return h("li.item.gap",
    h("div.grow",
      h("span.title", gap.question || "(no question)"),
      h("p.muted", `Asked ${fmtNum(gap.count)} times · last ${fmtDate(gap.lastSeenAt)}`),
      convs.length ? h("p.muted", "Conversations: ", convs.map((c, i) => [i ? ", " : "",
        h("a", { href: `#/inbox/${encodeURIComponent(bot.id)}/${encodeURIComponent(c)}` }, c)])) : null,
      form));
}

function gapsSection(bot) {
  const list = h("ul.list");
  const out = noticeBox();
  const more = h("button", { type: "button", hidden: true }, "Load more");
  let cursor = null;
  async function load() {
    const p = await page(`/v1/chatbots/${encodeURIComponent(bot.id)}/analytics/gaps`, { limit: 20, cursor });
    p.data.forEach((g) => list.append(gapRow(bot, g)));
    if (!list.children.length) mount(list, empty("No knowledge gaps: nothing declined, thumbed down or escalated."));
    cursor = p.hasMore ? p.nextCursor : null;
    more.hidden = !cursor;
  }
  more.addEventListener("click", () => load().catch((e) => notice(out, e, "error")));
  load().catch((err) => notice(out, err, "error"));
  return h("section.card", h("h2", "Knowledge gaps"),
    h("p.muted", "Questions the bot declined, that got a thumbs down or were escalated, most frequent first."),
    list, out, more);
}

export function render(root, bot) {
  const today = new Date();
  const from = h("input", { type: "date", name: "from", value: isoDay(new Date(today.getTime() - 29 * 864e5)) });
  const to = h("input", { type: "date", name: "to", value: isoDay(today) });
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const totals = h("div", { "aria-live": "polite" });
  const chart = h("div.chart-wrap", { "data-testid": "daily-chart" });
  const out = noticeBox();

  async function load() {
    notice(out, "");
    try {
      const res = await api.get(`/v1/chatbots/${encodeURIComponent(bot.id)}/analytics`, { from: from.value, to: to.value, timezone: tz });
      const t = (res && (res.totals || res)) || {};
      mount(totals, summary(t));
      mount(chart, dailyChart(get(res, "daily", []), [
        { key: "conversations", label: "Conversations" }, { key: "messages", label: "Messages" }]));
    } catch (err) {
      notice(out, err, "error");
      mount(chart, dailyChart([], [{ key: "conversations", label: "Conversations" }]));
    }
  }
  const filter = h("form.filters", {
    "aria-label": "Period",
    onsubmit: (e) => {
      e.preventDefault();
      load();
    },
  }, field("From", from), field("To", to), h("div.actions", h("button", { type: "submit" }, "Show")),
  h("p.muted", `Days in ${tz}`));
  root.append(h("section.card", h("h2", "Summary"), filter, out, totals, chart), topicsSection(bot), gapsSection(bot));
  load();
}
