// A small inline SVG chart of a daily series: bars for the first series, a line
// for the second, y-axis ticks, a few date labels, and a data table beside it
// for screen readers. No library: a few dozen lines cover what the page needs.

import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A number from a field that may be a number or an object of counts ({visitor, bot, agent}). */
export function count(v) {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (v && typeof v === "object") return Object.values(v).reduce((a, b) => a + count(b), 0);
  return 0;
}

function niceMax(v) {
  if (v <= 5) return 5;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * dailyChart(rows, [{key: "conversations", label: "Conversations"}, {key: "messages", label: "Messages"}])
 */
export function dailyChart(rows, series, title = "Daily activity") {
  const data = (Array.isArray(rows) ? rows : []).filter((r) => r && r.date);
  const W = 720, H = 240, L = 44, R = 12, T = 12, B = 36;
  const iw = W - L - R, ih = H - T - B;
  const values = (key) => data.map((r) => count(r[key]));
  const max = niceMax(Math.max(1, ...series.flatMap((sr) => values(sr.key))));
  const x = (i) => L + (data.length ? (i + 0.5) * (iw / data.length) : 0);
  const y = (v) => T + ih - (v / max) * ih;
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "chart-title", class: "chart",
    preserveAspectRatio: "xMidYMid meet",
  }, s("title", { id: "chart-title" }, title));

  for (let i = 0; i <= 4; i += 1) {
    const v = (max / 4) * i;
    svg.append(
      s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }),
      s("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, Number.isInteger(v) ? v : v.toFixed(1)),
    );
  }
  if (!data.length) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "tick" }, "No data in this period"));
  }
  const [bars, line] = series;
  if (bars) {
    const bw = Math.max(1, (iw / Math.max(1, data.length)) * 0.6);
    values(bars.key).forEach((v, i) => svg.append(
      s("rect", { x: x(i) - bw / 2, y: y(v), width: bw, height: Math.max(0, T + ih - y(v)), class: "bar" },
        s("title", {}, `${data[i].date}: ${v} ${bars.label.toLowerCase()}`)),
    ));
  }
  if (line && data.length) {
    const pts = values(line.key).map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.append(s("polyline", { points: pts, class: "line", fill: "none" }));
  }
  const step = Math.max(1, Math.ceil(data.length / 6));
  data.forEach((r, i) => {
    if (i % step === 0 || i === data.length - 1) {
      svg.append(s("text", { x: x(i), y: H - B + 18, "text-anchor": "middle", class: "tick" }, String(r.date).slice(5, 10)));
    }
  });
  svg.append(s("line", { x1: L, x2: W - R, y1: T + ih, y2: T + ih, class: "axis" }));

  const legend = h("p.legend", series.map((sr, i) => h(`span.key.k${i}`, sr.label)));
  const table = h("table.visually-hidden", h("caption", title),
    h("thead", h("tr", h("th", { scope: "col" }, "Date"), series.map((sr) => h("th", { scope: "col" }, sr.label)))),
    h("tbody", data.map((r) => h("tr", h("th", { scope: "row" }, r.date), series.map((sr) => h("td", String(count(r[sr.key]))))))));
  return h("figure.chart-box", svg, legend, table);
}
