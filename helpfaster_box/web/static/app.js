// Dashboard entry: session check, hash router, page shell. Pages are modules
// in ./pages/ exporting render(root, params, ctx) -> optional cleanup function
// (pages that poll return one so leaving the page stops the timer).

import { onSignedOut, restoreSession, session, signOut } from "./api.js";
import { h, mount } from "./dom.js";

const routes = [
  { re: /^\/signin$/, page: "signin", nav: null, open: true },
  { re: /^\/?$/, page: "chatbots", nav: "chatbots" },
  { re: /^\/chatbots\/([^/]+)(?:\/([a-z-]+))?$/, page: "chatbot", nav: "chatbots", keys: ["botId", "tab"] },
  { re: /^\/inbox(?:\/([^/]+))?(?:\/([^/]+))?$/, page: "inbox", nav: "inbox", keys: ["botId", "convId"] },
  { re: /^\/leads(?:\/([^/]+))?(?:\/([^/]+))?$/, page: "leads", nav: "leads", keys: ["botId", "leadId"] },
  { re: /^\/settings\/api-keys$/, page: "settings-keys", nav: "settings" },
  { re: /^\/settings\/webhooks(?:\/([^/]+))?$/, page: "settings-webhooks", nav: "settings", keys: ["webhookId"] },
];

const main = document.getElementById("main");
let cleanup = null;
let signedIn = false;
let renderCount = 0;

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function parse() {
  const raw = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
  const [path, qs] = raw.split("?");
  for (const r of routes) {
    const m = r.re.exec(path);
    if (!m) continue;
    const params = Object.fromEntries(new URLSearchParams(qs || ""));
    (r.keys || []).forEach((k, i) => {
      if (m[i + 1]) params[k] = m[i + 1];
    });
    return { route: r, params };
  }
  return null;
}

function shell(active) {
  document.getElementById("top").hidden = !signedIn;
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const org = session.organization || {};
  document.getElementById("who").textContent =
    signedIn ? `${org.name || "Organization"} · ${session.role || "member"}` : "";
}

async function route() {
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a page's cleanup must not stop navigation */
    }
    cleanup = null;
  }
  const found = parse();
  if (!found) {
    shell(null);
    mount(main, h("h1", "Page not found"), h("p", h("a", { href: "#/" }, "Back to the chatbots")));
    return;
  }
  if (!found.route.open && !signedIn) {
    navigate("#/signin");
    return;
  }
  if (found.route.page === "signin" && signedIn) {
    navigate("#/");
    return;
  }
  shell(found.route.nav);
  const mine = ++renderCount;
  const root = mount(main, h("p.muted", "Loading…"));
  try {
    const mod = await import(`./pages/${found.route.page}.js`);
    if (mine !== renderCount) return; // navigated away meanwhile
    root.replaceChildren();
    const ctx = { navigate, onSignedIn, session, stale: () => mine !== renderCount };
    const result = await mod.render(root, found.params, ctx);
    if (typeof result === "function") {
      if (mine === renderCount) cleanup = result;
      else result();
    }
  } catch (err) {
    if (mine !== renderCount) return;
    mount(root, h("h1", "Something went wrong"), h("p.notice.error", { role: "alert" }, err.message || String(err)));
  }
  const heading = main.querySelector("h1");
  document.title = heading ? `${heading.textContent} · HelpFaster Box` : "HelpFaster Box";
}

function onSignedIn() {
  signedIn = true;
  navigate("#/");
}

onSignedOut(() => {
  if (!signedIn) return;
  signedIn = false;
  navigate("#/signin");
});

document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await signOut();
  } catch {
    /* signed out locally either way */
  }
  signedIn = false;
  navigate("#/signin");
});

document.getElementById("skip-link").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});

window.addEventListener("hashchange", () => {
  route().then(() => {
    // Move focus to the new page for keyboard and screen-reader users, unless the
    // page put it somewhere itself (the sign-in field).
    if (!main.contains(document.activeElement) || document.activeElement === main) main.focus({ preventScroll: true });
  });
});

async function start() {
  try {
    signedIn = await restoreSession();
  } catch (err) {
    signedIn = false;
    mount(main, h("p.notice.error", { role: "alert" }, `Cannot reach the box: ${err.message}`));
  }
  await route();
}

start();
