// Chatbots: the list with a create form, or the first-run page when there are none.

import { api, page } from "../api.js";
import { fmtDate, field, h, notice, noticeBox } from "../dom.js";
import { rememberBot } from "./common.js";

function createForm(ctx, { compact = false } = {}) {
  const name = h("input", { name: "name", required: true, maxlength: 200, placeholder: "Support bot" });
  const welcome = h("input", { name: "welcomeMessage", maxlength: 2000, placeholder: "Hi! How can I help you today?" });
  const mode = h(
    "select",
    { name: "answerMode" },
    h("option", { value: "" }, "Box default"),
    h("option", { value: "extractive" }, "Extractive (quotes your documents)"),
    h("option", { value: "grounded" }, "Grounded (model answers from your documents)"),
    h("option", { value: "generative" }, "Generative (model may answer freely)"),
  );
  const out = noticeBox();
  const submit = h("button.primary", { type: "submit" }, "Create chatbot");
  return h(
    "form.card",
    {
      "aria-label": "Create a chatbot",
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true;
        try {
          const body = { name: name.value.trim() };
          if (welcome.value.trim()) body.welcomeMessage = welcome.value.trim();
          if (mode.value) body.answerMode = mode.value;
          const bot = await api.post("/v1/chatbots", body);
          rememberBot(bot.id);
          ctx.navigate(`#/chatbots/${encodeURIComponent(bot.id)}/sources`);
        } catch (err) {
          notice(out, err, "error");
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h2", compact ? "New chatbot" : "1. Create a chatbot"),
    field("Name", name),
    field("Welcome message", welcome, "Shown when a visitor opens the chat. Optional."),
    field("Answer mode", mode),
    out,
    h("div.actions", submit),
  );
}

function firstRun(root, ctx) {
  root.append(
    h("h1", "Welcome to HelpFaster Box"),
    h("p.lead", "There are no chatbots yet. Three steps get a support bot answering from your documents:"),
    h(
      "ol.steps",
      h("li", h("strong", "Create a chatbot"), " — give it a name (below)."),
      h("li", h("strong", "Add knowledge"), " — drop a document (PDF, Word, HTML, Markdown, text), paste text, add Q&A pairs or a web page on the Sources tab."),
      h("li", h("strong", "Try it"), " — ask questions in the Try it tab and check the cited sources."),
      h("li", h("strong", "Put it on your site"), " — create a publishable key on the Widget keys tab and paste the script tag into your intranet page."),
    ),
    createForm(ctx),
  );
}

function row(bot) {
  const href = `#/chatbots/${encodeURIComponent(bot.id)}/settings`;
  return h(
    "li.item",
    h("div.grow",
      h("a.title", { href }, bot.name || bot.id),
      h("p.muted", `${bot.answerMode || "—"} · created ${fmtDate(bot.createdAt)}`)),
    h("div.links",
      h("a", { href: `#/chatbots/${encodeURIComponent(bot.id)}/sources` }, "Sources"),
      h("a", { href: `#/chatbots/${encodeURIComponent(bot.id)}/try` }, "Try it"),
      h("a", { href: `#/inbox/${encodeURIComponent(bot.id)}` }, "Inbox"),
      h("a", { href: `#/chatbots/${encodeURIComponent(bot.id)}/analytics` }, "Analytics")),
  );
}

export async function render(root, _params, ctx) {
  let first = await page("/v1/chatbots", { limit: 50 });
  if (!first.data.length) {
    firstRun(root, ctx);
    return;
  }
  const list = h("ul.list", { "aria-label": "Chatbots" }, first.data.map(row));
  const status = noticeBox();
  const more = h("button", { type: "button", hidden: !first.hasMore }, "Load more");
  more.addEventListener("click", async () => {
    try {
      first = await page("/v1/chatbots", { limit: 50, cursor: first.nextCursor });
      first.data.forEach((b) => list.append(row(b)));
      more.hidden = !first.hasMore;
    } catch (err) {
      notice(status, err, "error");
    }
  });
  root.append(
    h("h1", "Chatbots"),
    h("div.split", h("section", list, status, more), h("aside", createForm(ctx, { compact: true }))),
  );
}
