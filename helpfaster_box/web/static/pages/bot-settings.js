// Chatbot settings: PATCH of name, instructions, messages, answer mode, model
// settings, lead capture and escalation; delete. Empty message fields are sent
// as null, which the API resets to its default.

import { api } from "../api.js";
import { check, field, get, h, notice, noticeBox } from "../dom.js";

const LEAD_FIELDS = ["name", "email", "phone", "company"];

function text(name, value, opts = {}) {
  const tag = opts.multiline ? "textarea" : "input";
  const el = h(tag, { name, maxlength: opts.max || 2000, rows: opts.multiline ? 6 : null });
  el.value = value ?? "";
  return el;
}

function num(name, value, min, max, step = 1) {
  return h("input", { type: "number", name, min, max, step, value: value ?? "" });
}

function orNull(v) {
  const s = v.trim();
  return s ? s : null;
}

function numOrNull(v) {
  return v === "" ? null : Number(v);
}

export function render(root, bot, ctx) {
  const lead = bot.leadCapture || {};
  const esc = bot.escalation || {};
  const f = {
    name: h("input", { name: "name", required: true, maxlength: 200, value: bot.name || "" }),
    instructions: text("instructions", bot.instructions, { multiline: true, max: 20000 }),
    welcome: text("welcomeMessage", bot.welcomeMessage),
    fallback: text("fallbackMessage", bot.fallbackMessage),
    escMsg: text("escalationMessage", bot.escalationMessage),
    mode: h("select", { name: "answerMode" }, ["extractive", "grounded", "generative"].map(
      (m) => h("option", { value: m, selected: bot.answerMode === m }, m))),
    temperature: num("temperature", bot.temperature, 0, 2, 0.05),
    maxTokens: num("maxTokens", bot.maxTokens, 1, 4096),
    askAfter: num("askAfterMessages", get(lead, "askAfterMessages", 3), 0, 100),
    afterUnanswered: num("afterUnanswered", get(esc, "afterUnanswered", 2), 0, 100),
  };
  const leadOn = check("Ask visitors for contact details", "leadEnabled", Boolean(lead.enabled));
  const onIntent = check("Also ask when the visitor wants to be contacted", "onIntent", lead.onIntent !== false);
  const fields = Array.isArray(lead.fields) ? lead.fields : ["name", "email"];
  const leadFields = LEAD_FIELDS.map((n) => check(n, "leadField", fields.includes(n), n));
  const escOn = check("Hand conversations over to a person", "escEnabled", esc.enabled !== false);
  const onHuman = check("When the visitor asks for a person", "onHumanRequest", esc.onHumanRequest !== false);
  const out = noticeBox();
  const save = h("button.primary", { type: "submit" }, "Save settings");

  const form = h(
    "form.card",
    {
      "aria-label": "Chatbot settings",
      onsubmit: async (e) => {
        e.preventDefault();
        const checked = (wrap) => wrap.querySelector("input").checked;
        const body = {
          name: f.name.value.trim(),
          instructions: orNull(f.instructions.value),
          welcomeMessage: orNull(f.welcome.value),
          fallbackMessage: orNull(f.fallback.value),
          escalationMessage: orNull(f.escMsg.value),
          answerMode: f.mode.value,
          temperature: numOrNull(f.temperature.value),
          maxTokens: numOrNull(f.maxTokens.value),
          leadCapture: {
            enabled: checked(leadOn),
            fields: leadFields.filter(checked).map((w) => w.querySelector("input").value),
            askAfterMessages: Number(f.askAfter.value || 0),
            onIntent: checked(onIntent),
          },
          escalation: {
            enabled: checked(escOn),
            onHumanRequest: checked(onHuman),
            afterUnanswered: Number(f.afterUnanswered.value || 0),
          },
        };
        save.disabled = true;
        try {
          const updated = await api.patch(`/v1/chatbots/${encodeURIComponent(bot.id)}`, body);
          Object.assign(bot, updated || {});
          f.welcome.value = bot.welcomeMessage ?? f.welcome.value;
          f.fallback.value = bot.fallbackMessage ?? f.fallback.value;
          f.escMsg.value = bot.escalationMessage ?? f.escMsg.value;
          f.instructions.value = bot.instructions ?? f.instructions.value;
          notice(out, "Saved.");
        } catch (err) {
          notice(out, err, "error");
        } finally {
          save.disabled = false;
        }
      },
    },
    h("h2", "Settings"),
    field("Name", f.name),
    field("Instructions", f.instructions, "The system prompt: tone, scope, what not to answer."),
    field("Welcome message", f.welcome, "Empty = the default."),
    field("Fallback message", f.fallback, "Said when the knowledge has no answer. Empty = the default."),
    field("Escalation message", f.escMsg, "Said when a conversation is handed to a person."),
    h("fieldset", h("legend", "Answers"),
      field("Answer mode", f.mode, "Extractive quotes your documents; grounded lets the model phrase an answer from them; generative may also answer from the model alone."),
      field("Temperature", f.temperature),
      field("Max tokens", f.maxTokens)),
    h("fieldset", h("legend", "Lead capture"), leadOn,
      h("div.checks", { role: "group", "aria-label": "Fields to ask for" }, leadFields),
      field("Ask after this many visitor messages", f.askAfter), onIntent),
    h("fieldset", h("legend", "Escalation"), escOn, onHuman,
      field("Escalate after this many unanswered questions in a row (0 = never)", f.afterUnanswered)),
    out,
    h("div.actions", save),
  );

  const delOut = noticeBox();
  const del = h("button.danger", {
    type: "button",
    onclick: async () => {
      if (!confirm(`Delete ${bot.name} with all its sources, conversations and leads?`)) return;
      del.disabled = true;
      try {
        await api.del(`/v1/chatbots/${encodeURIComponent(bot.id)}`);
        ctx.navigate("#/");
      } catch (err) {
        notice(delOut, err, "error");
        del.disabled = false;
      }
    },
  }, "Delete chatbot");
  root.append(form, h("section.card.danger-zone", h("h2", "Delete"),
    h("p", "Removes the chatbot and everything it holds. This cannot be undone."), delOut, del));
}
