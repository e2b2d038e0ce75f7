/*
 * HelpFaster Box chat widget. One classic script, no dependencies:
 *
 *   <script src="http://box:8080/widget.js" data-chatbot="bot_..." data-key="hf_pub_..." async></script>
 *
 * Optional: data-title="Help", data-open="true" (start open), data-position="left".
 * The API base is taken from this script's own src. Everything renders inside a
 * shadow root (styles do not leak either way), and every piece of visitor input
 * or model output is set with textContent, never as HTML.
 */
(function () {
  "use strict";

  var script = document.currentScript ||
    document.querySelector('script[src*="widget.js"][data-chatbot]');
  if (!script || !script.getAttribute("data-chatbot")) return;
  var BOT = script.getAttribute("data-chatbot");
  var KEY = script.getAttribute("data-key") || "";
  var BASE = new URL("./", script.src).href; // ".../widget.js" -> ".../"
  var STORE = "hf_widget_" + BOT;
  if (document.querySelector('[data-hf-widget="' + BOT + '"]')) return; // pasted twice

  var DEFAULTS = {
    name: script.getAttribute("data-title") || "Chat with us",
    welcomeMessage: "Hi! How can I help you today?",
    escalationMessage: "Thanks, I've passed this conversation to our team; a person will follow up here soon.",
    leadCapture: { enabled: false, fields: ["name", "email"], askAfterMessages: 3, onIntent: true },
    escalation: { enabled: true },
  };
  var POLL_MS = 4000;
  var LEAD_LABELS = { name: "Name", email: "Email", phone: "Phone", company: "Company" };

  // ---- state kept for the browser tab (sessionStorage) ----
  function load() {
    try { return JSON.parse(sessionStorage.getItem(STORE) || "{}") || {}; } catch (e) { return {}; }
  }
  var state = load();
  function save() {
    try { sessionStorage.setItem(STORE, JSON.stringify(state)); } catch (e) { /* disabled storage */ }
  }

  // ---- HTTP ----
  function url(path) { return new URL(path.replace(/^\//, ""), BASE).href; }
  function headers(json) {
    var hd = { accept: "application/json", "x-api-key": KEY };
    if (json) hd["content-type"] = "application/json";
    return hd;
  }
  function failure(res) {
    return res.json().catch(function () { return null; }).then(function (body) {
      var err = new Error((body && body.message) || ("The chat failed (HTTP " + res.status + ")."));
      err.status = res.status;
      throw err;
    });
  }
  function netError(err) {
    if (err && err.status) return err;
    var e = new Error("The chat is not available on this site right now.");
    e.network = true;
    return e;
  }
  function getJson(path) {
    return fetch(url(path), { headers: headers(false), credentials: "omit", mode: "cors" })
      .then(function (res) { return res.ok ? res.json() : failure(res); });
  }
  function postJson(path, body) {
    return fetch(url(path), { method: "POST", headers: headers(true), credentials: "omit", mode: "cors", body: JSON.stringify(body || {}) })
      .then(function (res) { return res.ok ? res.json().catch(function () { return {}; }) : failure(res); });
  }

  function parseBlock(block) {
    var ev = "message", data = [];
    block.split(/\r\n|\n|\r/).forEach(function (line) {
      if (!line || line.charAt(0) === ":") return;
      var i = line.indexOf(":");
      var k = i < 0 ? line : line.slice(0, i);
      var v = i < 0 ? "" : line.slice(i + 1);
      if (v.charAt(0) === " ") v = v.slice(1);
      if (k === "event") ev = v; else if (k === "data") data.push(v);
    });
    return data.length ? { event: ev, data: data.join("\n") } : null;
  }

  /** POST chat with stream: true; onToken(text) per token; resolves with the done payload. */
  function streamChat(body, onToken) {
    return fetch(url("v1/chatbots/" + encodeURIComponent(BOT) + "/chat"), {
      method: "POST", credentials: "omit", mode: "cors",
      headers: Object.assign(headers(true), { accept: "text/event-stream" }),
      body: JSON.stringify(Object.assign({}, body, { stream: true })),
    }).then(function (res) {
      if (!res.ok) return failure(res);
      if ((res.headers.get("content-type") || "").indexOf("text/event-stream") < 0) {
        return res.json().then(function (d) { if (d && typeof d.reply === "string") onToken(d.reply); return d; });
      }
      var reader = res.body.getReader(), decoder = new TextDecoder(), buf = "", done = null;
      function handle(ev) {
        var data;
        try { data = JSON.parse(ev.data); } catch (e) { data = { text: ev.data }; }
        if (ev.event === "token") onToken(typeof data.text === "string" ? data.text : "");
        else if (ev.event === "done") done = data || {};
        else if (ev.event === "error") {
          var err = new Error((data && data.message) || "The answer failed.");
          err.status = 500;
          throw err;
        }
      }
      function pump() {
        return reader.read().then(function (r) {
          buf += decoder.decode(r.value || new Uint8Array(), { stream: !r.done });
          var m;
          while ((m = /\r\n\r\n|\n\n|\r\r/.exec(buf))) {
            var ev = parseBlock(buf.slice(0, m.index));
            buf = buf.slice(m.index + m[0].length);
            if (ev) handle(ev);
          }
          if (!r.done) return pump();
          var last = parseBlock(buf);
          if (last) handle(last);
          if (!done) throw Object.assign(new Error("The answer was cut off."), { status: 500 });
          return done;
        });
      }
      return pump();
    });
  }

  // ---- DOM ----
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function safeHref(u) {
    if (typeof u !== "string" || !u) return null;
    try {
      var p = new URL(u, location.href);
      return p.protocol === "http:" || p.protocol === "https:" ? p.href : null;
    } catch (e) { return null; }
  }

  function chatIcon() { // a speech bubble, drawn (no emoji font on many intranet machines)
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "28");
    svg.setAttribute("height", "28");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(NS, "path");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    path.setAttribute("fill", "currentColor");
    svg.append(path);
    return svg;
  }

  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box}",
    "[hidden]{display:none!important}",
    ".root{position:fixed;bottom:20px;right:20px;z-index:2147483000;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#1b1f24}",
    ".root.left{right:auto;left:20px}",
    ".bubble{width:56px;height:56px;border-radius:50%;border:0;background:#1f5fbf;color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);float:right;display:flex;align-items:center;justify-content:center}",
    ".left .bubble{float:left}",
    "button:focus-visible,input:focus-visible,textarea:focus-visible,a:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}",
    ".panel{width:min(370px,calc(100vw - 24px));height:min(560px,calc(100vh - 100px));margin-bottom:12px;background:#fff;border:1px solid #d8dce2;border-radius:12px;box-shadow:0 8px 28px rgba(0,0,0,.2);display:flex;flex-direction:column;overflow:hidden}",
    ".panel[hidden]{display:none}",
    ".head{display:flex;align-items:center;justify-content:space-between;background:#1f5fbf;color:#fff;padding:10px 14px;font-weight:700}",
    ".head button{background:transparent;border:0;color:#fff;font-size:20px;cursor:pointer;padding:0 4px}",
    ".log{flex:1;overflow-y:auto;padding:10px;background:#fafbfc}",
    ".msg{margin:6px 0;padding:8px 10px;border-radius:10px;max-width:88%;white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid #e1e4e8}",
    ".msg.user{margin-left:auto;background:#e3ecfa;border-color:#c8d8f3}",
    ".msg.agent{background:#e9f6ee;border-color:#bfe2cb}",
    ".msg.note{background:transparent;border:0;color:#5b6470;font-size:13px;text-align:center;max-width:100%}",
    ".msg.error{background:#fbeaea;border-color:#e4b4b0;color:#b3261e;max-width:100%}",
    ".who{display:block;font-size:11px;font-weight:700;color:#5b6470}",
    ".srcs{margin:6px 0 0;padding-left:18px;font-size:13px}",
    ".srcs a{color:#1f5fbf}",
    ".typing::after{content:'\\258D';color:#5b6470}",
    "form{display:flex;gap:6px;padding:8px;border-top:1px solid #e1e4e8;background:#fff}",
    "textarea,input{font:inherit;flex:1;padding:7px 9px;border:1px solid #b9c0ca;border-radius:8px;resize:none;color:#1b1f24;background:#fff;width:100%}",
    "button.send,button.act,button.link{font:inherit;border-radius:8px;padding:7px 12px;cursor:pointer}",
    "button.send{background:#1f5fbf;color:#fff;border:1px solid #1f5fbf}",
    "button.act{background:#fff;border:1px solid #b9c0ca;color:#1b1f24}",
    "button.link{background:transparent;border:0;color:#1f5fbf;text-decoration:underline;padding:4px}",
    "button:disabled{opacity:.55;cursor:progress}",
    ".bar{display:flex;justify-content:flex-end;padding:4px 8px 0;background:#fff}",
    ".lead{display:block;margin:6px 0;padding:10px;border:1px solid #d8dce2;border-radius:10px;background:#fff}",
    ".lead label{display:block;font-size:13px;font-weight:600;margin:6px 0 2px}",
    ".lead .row{display:flex;gap:6px;margin-top:8px}",
    ".vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    "@media (max-width:480px){.root{right:10px;bottom:10px}.panel{width:calc(100vw - 20px);height:calc(100vh - 90px)}}",
  ].join("\n");

  var host = document.createElement("div");
  host.setAttribute("data-hf-widget", BOT);
  var shadow = host.attachShadow({ mode: "open" });
  var style = el("style");
  style.textContent = CSS;
  var root = el("div", "root" + (script.getAttribute("data-position") === "left" ? " left" : ""));
  var panel = el("div", "panel");
  panel.hidden = true;
  panel.id = "hf-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", DEFAULTS.name);
  var head = el("div", "head");
  var title = el("span", "", DEFAULTS.name);
  var close = el("button", "", "\u00d7");
  close.type = "button";
  close.setAttribute("aria-label", "Close chat");
  head.append(title, close);
  var log = el("div", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  var bar = el("div", "bar");
  var human = el("button", "link", "Talk to a person");
  human.type = "button";
  bar.append(human);
  var form = el("form");
  var inputId = "hf-input";
  var label = el("label", "vh", "Your message");
  label.htmlFor = inputId;
  var input = el("textarea");
  input.id = inputId;
  input.rows = 1;
  input.maxLength = 4000;
  input.placeholder = "Type your question…";
  var send = el("button", "send", "Send");
  send.type = "submit";
  form.append(label, input, send);
  panel.append(head, log, bar, form);
  var bubble = el("button", "bubble");
  bubble.type = "button";
  bubble.append(chatIcon());
  bubble.setAttribute("aria-label", "Open chat");
  bubble.setAttribute("aria-expanded", "false");
  bubble.setAttribute("aria-controls", "hf-panel");
  root.append(panel, bubble);
  shadow.append(style, root);

  var bot = DEFAULTS;
  var seen = {};
  var pollTimer = null;
  var leadAsked = false;
  var started = false;

  function scroll() { log.scrollTop = log.scrollHeight; }
  function say(role, text, who) {
    var m = el("div", "msg " + role);
    if (who) m.append(el("span", "who", who));
    var t = el("span", "text", text);
    m.append(t);
    log.append(m);
    scroll();
    return { box: m, text: t };
  }
  function note(text) { return say("note", text); }
  function showError(err) {
    var m = say("error", (err && err.message) || "Something went wrong.");
    m.box.setAttribute("role", "alert");
  }
  function sourcesEl(sources) {
    if (!Array.isArray(sources) || !sources.length) return null;
    var ol = el("ol", "srcs");
    sources.forEach(function (s) {
      if (!s) return;
      var li = el("li");
      var href = safeHref(s.url);
      var text = s.title || s.url || "Source";
      if (href) {
        var a = el("a", "", text);
        a.href = href;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        li.append(a);
      } else li.append(el("span", "", text));
      ol.append(li);
    });
    return ol;
  }
  function agentName(m) { return m.author ? m.author : "Support team"; }

  function renderHistory(conv) {
    (Array.isArray(conv.messages) ? conv.messages : []).forEach(function (m) {
      if (m.id) seen[m.id] = true;
      var content = typeof m.content === "string" ? m.content : "";
      if (m.role === "user") say("user", content);
      else if (m.role === "agent") say("agent", content, agentName(m));
      else if (m.role === "assistant") {
        var b = say("assistant", content);
        var s = sourcesEl(m.sources);
        if (s) b.box.append(s);
      }
    });
  }

  function pollAgent() {
    if (pollTimer || !state.conversationId) return;
    pollTimer = setInterval(function () {
      getJson("v1/conversations/" + encodeURIComponent(state.conversationId)).then(function (conv) {
        (Array.isArray(conv.messages) ? conv.messages : []).forEach(function (m) {
          if (m.role !== "agent" || !m.id || seen[m.id]) return;
          seen[m.id] = true;
          say("agent", typeof m.content === "string" ? m.content : "", agentName(m));
        });
        if (conv.status && conv.status !== "escalated") {
          stopPolling();
          state.escalated = false;
          save();
          human.hidden = !escalationOn();
          if (conv.status === "resolved") note("Our team has closed this request. The assistant can help you again.");
        }
      }).catch(function () { /* next tick tries again */ });
    }, POLL_MS);
  }
  function stopPolling() { clearInterval(pollTimer); pollTimer = null; }
  function escalationOn() { return !bot.escalation || bot.escalation.enabled !== false; }

  function markEscalated() {
    state.escalated = true;
    save();
    human.hidden = true;
    pollAgent();
  }

  function leadForm() {
    var lc = bot.leadCapture || {};
    var fields = (Array.isArray(lc.fields) && lc.fields.length ? lc.fields : ["name", "email"])
      .filter(function (f) { return LEAD_LABELS[f]; });
    var f = el("form", "lead");
    f.setAttribute("aria-label", "Your contact details");
    f.append(el("span", "", "Leave your contact details so our team can follow up:"));
    var inputs = {};
    fields.forEach(function (name) {
      var id = "hf-lead-" + name;
      var l = el("label", "", LEAD_LABELS[name]);
      l.htmlFor = id;
      var i = el("input");
      i.id = id;
      i.name = name;
      i.type = name === "email" ? "email" : name === "phone" ? "tel" : "text";
      i.autocomplete = name === "company" ? "organization" : name === "phone" ? "tel" : name;
      inputs[name] = i;
      f.append(l, i);
    });
    var row = el("div", "row");
    var ok = el("button", "send", "Save");
    ok.type = "submit";
    var skip = el("button", "act", "Not now");
    skip.type = "button";
    row.append(ok, skip);
    f.append(row);
    f.addEventListener("submit", function (e) {
      e.preventDefault();
      var visitor = {};
      Object.keys(inputs).forEach(function (k) { if (inputs[k].value.trim()) visitor[k] = inputs[k].value.trim(); });
      state.visitor = visitor;
      state.leadDone = true;
      save();
      f.remove();
      note("Thanks! We'll send your details with your next message.");
      input.focus();
    });
    skip.addEventListener("click", function () {
      state.leadDone = true;
      save();
      f.remove();
      input.focus();
    });
    return f;
  }
  function maybeAskLead() {
    var lc = bot.leadCapture || {};
    if (!lc.enabled || state.leadDone || leadAsked) return;
    if ((state.sent || 0) < (Number(lc.askAfterMessages) || 0)) return;
    leadAsked = true;
    log.append(leadForm());
    scroll();
  }

  function ask(message) {
    say("user", message);
    var answer = say("assistant", "");
    answer.box.classList.add("typing");
    var body = { message: message };
    if (state.conversationId) body.conversationId = state.conversationId;
    if (state.visitor && !state.visitorSent) body.visitor = state.visitor;
    return streamChat(body, function (t) {
      answer.text.textContent += t;
      scroll();
    }).then(function (done) {
      answer.box.classList.remove("typing");
      if (typeof done.reply === "string") answer.text.textContent = done.reply;
      if (done.messageId) seen[done.messageId] = true;
      var s = sourcesEl(done.sources);
      if (s) answer.box.append(s);
      if (body.visitor) state.visitorSent = true;
      if (done.conversationId) state.conversationId = done.conversationId;
      state.sent = (state.sent || 0) + 1;
      save();
      if (done.escalated) markEscalated();
      maybeAskLead();
      scroll();
    }, function (err) {
      answer.box.remove();
      showError(netError(err));
    });
  }

  function start() {
    if (started) return;
    started = true;
    getJson("v1/chatbots/" + encodeURIComponent(BOT)).then(function (b) {
      if (b && typeof b === "object") bot = Object.assign({}, DEFAULTS, b);
    }).catch(function () { /* a publishable key may not read the chatbot: defaults */ })
      .then(function () {
        title.textContent = script.getAttribute("data-title") || bot.name || DEFAULTS.name;
        human.hidden = !escalationOn() || Boolean(state.escalated);
        say("assistant", bot.welcomeMessage || DEFAULTS.welcomeMessage);
        if (!state.conversationId) return maybeAskLead();
        return getJson("v1/conversations/" + encodeURIComponent(state.conversationId)).then(function (conv) {
          renderHistory(conv);
          if (conv.status === "escalated") markEscalated();
        }).catch(function () { /* history unavailable: keep chatting in the same conversation */ })
          .then(maybeAskLead);
      });
  }

  function setOpen(open) {
    panel.hidden = !open;
    bubble.setAttribute("aria-expanded", String(open));
    bubble.setAttribute("aria-label", open ? "Close chat" : "Open chat");
    if (open) {
      start();
      input.focus();
    }
    state.open = open;
    save();
  }

  bubble.addEventListener("click", function () { setOpen(panel.hidden); });
  close.addEventListener("click", function () { setOpen(false); bubble.focus(); });
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { setOpen(false); bubble.focus(); }
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      if (typeof form.requestSubmit === "function") form.requestSubmit(); else send.click();
    }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var message = input.value.trim();
    if (!message || send.disabled) return;
    input.value = "";
    send.disabled = true;
    ask(message).then(function () { send.disabled = false; input.focus(); });
  });
  human.addEventListener("click", function () {
    if (!state.conversationId) {
      note("Write your question first; then a person from our team can pick it up.");
      input.focus();
      return;
    }
    human.disabled = true;
    postJson("v1/conversations/" + encodeURIComponent(state.conversationId) + "/escalate",
      { reason: "The visitor asked for a person." })
      .then(function () {
        note(bot.escalationMessage || DEFAULTS.escalationMessage);
        markEscalated();
      }, function (err) {
        if (err && err.status === 409) markEscalated();
        else showError(netError(err));
      })
      .then(function () { human.disabled = false; });
  });

  function mountHost() {
    document.body.appendChild(host);
    if (state.open || script.getAttribute("data-open") === "true") setOpen(true);
  }
  if (document.body) mountHost();
  else document.addEventListener("DOMContentLoaded", mountHost);
})();
