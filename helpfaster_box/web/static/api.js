// The dashboard's one door to the API. The session cookie (HttpOnly, set by
// POST /v1/dashboard/session) authenticates; the CSRF token lives only in this
// module's memory and goes in x-csrf-token on every write. On a page load it is
// fetched again with GET /v1/dashboard/session.

import { readSse } from "./sse.js";

export const session = { csrfToken: null, organization: null, role: null };

/** An API failure: carries the error body's code, message and details. */
export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && typeof body.message === "string" && body.message)
      || `Request failed (HTTP ${status}).`;
    super(message);
    this.status = status;
    this.code = (body && body.error) || "error";
    this.details = (body && Array.isArray(body.details)) ? body.details : [];
  }
}

const listeners = new Set();
/** Called with no arguments when the API says the session is gone (401). */
export function onSignedOut(fn) {
  listeners.add(fn);
}

async function errorFrom(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  return new ApiError(res.status, body);
}

function headersFor(method, extra, json) {
  const headers = { accept: "application/json", ...extra };
  if (json) headers["content-type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && session.csrfToken) {
    headers["x-csrf-token"] = session.csrfToken;
  }
  return headers;
}

/** Turn {a: 1, b: null} into "?a=1"; skips empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * request("POST", "/v1/chatbots", {name}) -> parsed JSON (or null for 204).
 * body may be a FormData (multipart) or a plain object (JSON).
 */
export async function request(method, path, body, { raw = false, signal } = {}) {
  const isForm = typeof FormData !== "undefined" && body instanceof FormData;
  const json = body !== undefined && !isForm;
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: headersFor(method, {}, json),
    body: body === undefined ? undefined : (isForm ? body : JSON.stringify(body)),
    signal,
  });
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && !path.startsWith("/v1/dashboard/session")) {
      for (const fn of listeners) fn();
    }
    throw err;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const api = {
  get: (path, params, opts) => request("GET", path + query(params), undefined, opts),
  post: (path, body, opts) => request("POST", path, body ?? {}, opts),
  patch: (path, body) => request("PATCH", path, body ?? {}),
  del: (path) => request("DELETE", path),
};

/** One page of a list: {data, hasMore, nextCursor}, defensively shaped. */
export async function page(path, params) {
  const body = await api.get(path, params);
  return {
    data: Array.isArray(body && body.data) ? body.data : [],
    hasMore: Boolean(body && body.hasMore),
    nextCursor: (body && body.nextCursor) || null,
  };
}

/** Every item of a list, following cursors (bounded, for selectors). */
export async function all(path, params, max = 500) {
  const out = [];
  let cursor = null;
  do {
    const p = await page(path, { ...params, limit: 100, cursor });
    out.push(...p.data);
    cursor = p.hasMore ? p.nextCursor : null;
  } while (cursor && out.length < max);
  return out;
}

function remember(body) {
  session.csrfToken = (body && body.csrfToken) || null;
  session.organization = (body && body.organization) || null;
  session.role = (body && body.role) || null;
}

/** GET /v1/dashboard/session; true when signed in. */
export async function restoreSession() {
  try {
    remember(await request("GET", "/v1/dashboard/session"));
    return true;
  } catch (err) {
    remember(null);
    if (err.status === 401 || err.status === 404) return false;
    throw err;
  }
}

export async function signIn(apiKey) {
  remember(await request("POST", "/v1/dashboard/session", { apiKey }));
}

export async function signOut() {
  try {
    await request("DELETE", "/v1/dashboard/session");
  } finally {
    remember(null);
  }
}

/**
 * Stream a chat turn. Calls onToken(text) per token event; resolves with the
 * `done` payload; rejects with an ApiError on an HTTP error or an `error` event.
 */
export async function streamChat(botId, body, onToken, signal) {
  const res = await fetch(`/v1/chatbots/${encodeURIComponent(botId)}/chat`, {
    method: "POST",
    credentials: "same-origin",
    headers: { ...headersFor("POST", {}, true), accept: "text/event-stream" },
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  if (!res.ok) throw await errorFrom(res);
  const type = res.headers.get("content-type") || "";
  if (!type.includes("text/event-stream")) {
    const done = await res.json(); // a server that answered in one piece
    if (done && typeof done.reply === "string") onToken(done.reply);
    return done;
  }
  let done = null;
  for await (const ev of readSse(res.body)) {
    let data = null;
    try {
      data = JSON.parse(ev.data);
    } catch {
      data = { text: ev.data };
    }
    if (ev.event === "token") onToken(typeof data.text === "string" ? data.text : "");
    else if (ev.event === "done") done = data || {};
    else if (ev.event === "error") throw new ApiError(500, data);
  }
  if (!done) throw new ApiError(500, { message: "The answer stream ended before it was complete." });
  return done;
}

/** GET a file with the session cookie and hand it to the browser as a download. */
export async function download(path, filename) {
  const res = await request("GET", path, undefined, { raw: true });
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
