// Sign-in: an API key is exchanged for a session cookie (POST /v1/dashboard/session).

import { signIn } from "../api.js";
import { field, h, notice, noticeBox } from "../dom.js";

export function render(root, _params, ctx) {
  const key = h("input.mono", {
    type: "password", name: "apiKey", autocomplete: "off", required: true,
    placeholder: "hf_live_…", spellcheck: "false",
  });
  const out = noticeBox();
  const submit = h("button.primary", { type: "submit" }, "Sign in");
  const form = h(
    "form.card.narrow",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        const value = key.value.trim();
        if (!value) {
          notice(out, "Enter an API key.", "error");
          return;
        }
        submit.disabled = true;
        notice(out, "");
        try {
          await signIn(value);
          key.value = "";
          ctx.onSignedIn();
        } catch (err) {
          notice(out, err, "error");
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h1", "Sign in to HelpFaster Box"),
    h("p", "Use an API key of your organization. The first admin key was printed by ",
      h("code", "helpfaster-box serve"), " on its first start."),
    field("API key", key, "The key is exchanged for a session cookie; it is not stored in the browser."),
    out,
    h("div.actions", submit),
  );
  root.append(form);
  key.focus();
}
