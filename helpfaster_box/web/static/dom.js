// Small DOM helpers. Everything that came from the API or a person is set with
// textContent (via h()'s string children), never innerHTML.

/**
 * h("button.primary", {type: "button", onclick}, "Save") -> an element.
 * Attributes: `on*` functions become listeners, `class`, `for`, `aria-*`, `data-*`,
 * booleans toggle the attribute, null/undefined/false are skipped.
 * Children: strings and numbers become text nodes; arrays are flattened; null is skipped.
 */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = [el.className, v].filter(Boolean).join(" ");
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = Boolean(v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replace an element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A unique id for label/for pairs. */
export function nextId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form field: field("Name", h("input", {name: "name"})). */
export function field(label, control, hint) {
  const id = control.id || nextId();
  control.id = id;
  const hintEl = hint ? h("p.hint", { id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div.field", h("label", { for: id }, label), control, hintEl);
}

/** A labelled checkbox: check("Enabled", "enabled", true). */
export function check(label, name, checked, value) {
  const id = nextId();
  return h(
    "div.check",
    h("input", { type: "checkbox", id, name, value: value ?? "on", checked }),
    h("label", { for: id }, label),
  );
}

/** Only http(s) URLs become links; anything else is shown as text. */
export function safeUrl(url) {
  if (typeof url !== "string" || !url) return null;
  try {
    const u = new URL(url, location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

export function linkOrText(url, text) {
  const href = safeUrl(url);
  if (!href) return h("span", text || url || "");
  return h("a", { href, target: "_blank", rel: "noopener noreferrer" }, text || url);
}

export function fmtDate(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function fmtNum(n, digits = 0) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "—";
  return n.toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function fmtPct(r) {
  if (typeof r !== "number" || !Number.isFinite(r)) return "—";
  return `${Math.round(r * 1000) / 10}%`;
}

/** A status/notice line: notice(el, "Saved.") or notice(el, err, "error"). */
export function notice(el, what, kind = "ok") {
  if (!el) return;
  const isErr = what instanceof Error || kind === "error";
  const text = what instanceof Error ? what.message : String(what ?? "");
  el.className = `notice ${isErr ? "error" : kind}`;
  el.setAttribute("role", isErr ? "alert" : "status");
  el.textContent = text;
  el.hidden = !text;
}

export function noticeBox() {
  const el = h("p.notice", { hidden: true });
  return el;
}

/** Run an async action from a button: disables it meanwhile, reports errors in `out`. */
export async function busy(button, out, fn) {
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (err) {
    notice(out, err, "error");
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** A value shown once (a key or a secret) with a copy button. */
export function shownOnce(label, value, note) {
  const id = nextId("secret");
  const input = h("input.mono", { id, readonly: true, value, "aria-label": label });
  const status = h("span.copy-status", { role: "status" });
  const copy = h("button", {
    type: "button",
    onclick: async () => {
      input.select();
      let ok = false;
      try {
        await navigator.clipboard.writeText(value);
        ok = true;
      } catch {
        ok = document.execCommand && document.execCommand("copy");
      }
      status.textContent = ok ? "Copied." : "Select the text and copy it.";
    },
  }, "Copy");
  return h(
    "div.once",
    { role: "region", "aria-label": label },
    h("label", { for: id }, label),
    h("div.row", input, copy, status),
    h("p.hint", note || "Store it now: it is not shown again."),
  );
}

/** A small empty-state paragraph. */
export function empty(text) {
  return h("p.empty", text);
}

/** Safe access to a nested field: get(obj, "messages.visitor", 0). */
export function get(obj, path, fallback) {
  let cur = obj;
  for (const k of path.split(".")) {
    if (cur === null || cur === undefined || typeof cur !== "object") return fallback;
    cur = cur[k];
  }
  return cur === undefined || cur === null ? fallback : cur;
}
