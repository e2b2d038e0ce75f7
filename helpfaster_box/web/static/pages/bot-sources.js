// Sources: drag-and-drop / picked file upload (multipart `file`), text, Q&A and
// URL forms, the list with live status (polled while anything is queued or
// processing), delete.

import { all, api } from "../api.js";
import { empty, fmtDate, fmtNum, field, h, linkOrText, mount, notice, noticeBox } from "../dom.js";
import { badge, poll } from "./common.js";

const ACCEPT = ".pdf,.docx,.html,.htm,.md,.markdown,.txt";
const BUSY = new Set(["queued", "processing"]);

function sourceRow(src, onDelete) {
  const name = src.title || src.filename || src.url || src.id;
  const del = h("button.small", { type: "button", "aria-label": `Delete ${name}` }, "Delete");
  del.addEventListener("click", () => onDelete(src, del));
  return h(
    "li.item",
    { "data-source-id": src.id, "data-status": src.status || "" },
    h("div.grow",
      h("span.title", name),
      h("p.muted", `${src.type || "?"}${src.format ? ` · ${src.format}` : ""} · `,
        `${fmtNum(src.chunkCount)} chunks · added ${fmtDate(src.createdAt)}`),
      src.url ? h("p.muted", linkOrText(src.url)) : null,
      src.error ? h("p.notice.error", src.error) : null),
    badge(src.status),
    del,
  );
}

function dropZone(onFiles) {
  const input = h("input", { type: "file", accept: ACCEPT, multiple: true, id: "source-file", class: "visually-hidden" });
  input.addEventListener("change", () => {
    onFiles([...input.files]);
    input.value = "";
  });
  const zone = h(
    "div.drop",
    { "data-testid": "drop-zone" },
    h("p", "Drop documents here (PDF, Word, HTML, Markdown, text) or "),
    h("label.button", { for: "source-file" }, "Choose files…"),
    input,
  );
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onFiles([...(e.dataTransfer?.files || [])]);
  });
  return zone;
}

function jsonForms(add) {
  const mk = (legend, controls, build) => {
    const out = noticeBox();
    const submit = h("button", { type: "submit" }, "Add");
    const form = h("form.sub", {
      "aria-label": legend,
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true;
        try {
          await add(build());
          form.reset();
          notice(out, "Added; indexing…");
        } catch (err) {
          notice(out, err, "error");
        } finally {
          submit.disabled = false;
        }
      },
    }, controls, out, h("div.actions", submit));
    return h("details", h("summary", legend), form);
  };
  const t = { title: h("input", { name: "title", required: true }), content: h("textarea", { name: "content", rows: 6, required: true }) };
  const q = { question: h("input", { name: "question", required: true }), answer: h("textarea", { name: "answer", rows: 4, required: true }) };
  const u = { url: h("input", { name: "url", type: "url", required: true, placeholder: "https://intranet/faq" }), title: h("input", { name: "title" }) };
  return h("div.forms",
    mk("Add text", [field("Title", t.title), field("Text", t.content)],
      () => ({ type: "text", title: t.title.value.trim(), content: t.content.value })),
    mk("Add a question and answer", [field("Question", q.question), field("Answer", q.answer)],
      () => ({ type: "qa", question: q.question.value.trim(), answer: q.answer.value })),
    mk("Add a web page", [field("URL", u.url), field("Title (optional)", u.title)],
      () => ({ type: "url", url: u.url.value.trim(), ...(u.title.value.trim() ? { title: u.title.value.trim() } : {}) })));
}

export async function render(root, bot) {
  const path = `/v1/chatbots/${encodeURIComponent(bot.id)}/sources`;
  const list = h("ul.list", { "aria-label": "Sources", "aria-live": "polite" });
  const out = noticeBox();
  let sources = [];

  async function refresh() {
    sources = await all(path);
    if (!sources.length) mount(list, empty("No sources yet: add a document, text, Q&A or a web page."));
    else mount(list, sources.map((s) => sourceRow(s, remove)));
  }

  async function remove(src, button) {
    if (!confirm(`Delete ${src.title || src.filename || src.id}?`)) return;
    button.disabled = true;
    try {
      await api.del(`/v1/sources/${encodeURIComponent(src.id)}`);
      await refresh();
    } catch (err) {
      notice(out, err, "error");
      button.disabled = false;
    }
  }

  async function upload(files) {
    for (const file of files) {
      const form = new FormData();
      form.append("file", file, file.name);
      notice(out, `Uploading ${file.name}…`);
      try {
        await api.post(path, form);
        notice(out, `${file.name} uploaded; indexing…`);
      } catch (err) {
        notice(out, new Error(`${file.name}: ${err.message}`), "error");
      }
    }
    await refresh();
    startPolling();
  }

  async function addJson(body) {
    await api.post(path, body);
    await refresh();
    startPolling();
  }

  let stop = null;
  function startPolling() {
    if (stop || !sources.some((s) => BUSY.has(s.status))) return;
    stop = poll(refresh, 1500, () => {
      const busy = sources.some((s) => BUSY.has(s.status));
      if (!busy) stop = null;
      return busy;
    });
  }

  root.append(
    h("section.card", h("h2", "Add knowledge"), dropZone(upload), jsonForms(addJson), out),
    h("section.card", h("h2", "Sources"), list),
  );
  await refresh();
  startPolling();
  return () => stop && stop();
}
