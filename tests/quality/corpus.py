"""Shared by the quality scripts: the corpus, the question set, an ingested app.

The corpus is the Debian Administrator's Handbook (Debian's `debian-handbook`
package, English HTML), a real manual nobody here wrote. It is fetched with
`apt-get download` and unpacked with `dpkg-deb -x` into `tests/quality/.cache/`
when missing (set HANDBOOK_DIR to use an already unpacked copy).

The ingested data directory (`tests/quality/.cache/data`) is reused between runs:
the first run uploads all 127 pages through `POST /v1/chatbots/{id}/sources`
(multipart HTML) and waits for ingestion; later runs only check that every source
is ready.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = HERE / ".cache"
DATA = CACHE / "data"
STATE = CACHE / "state.json"
PACKAGE = "debian-handbook"
HTML_SUBDIR = "usr/share/doc/debian-handbook/html/en-US"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the corpus ----------------------------------------------------------------
def handbook_dir() -> Path:
    """The directory of the handbook's English HTML pages, downloaded if missing."""
    env = os.environ.get("HANDBOOK_DIR")
    if env:
        return Path(env)
    target = CACHE / "handbook" / HTML_SUBDIR
    if len(list(target.glob("*.html"))) > 100:
        return target
    dl = CACHE / "deb"
    dl.mkdir(parents=True, exist_ok=True)
    debs = sorted(dl.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        log(f"downloading {PACKAGE} with apt-get download ...")
        subprocess.run(["apt-get", "download", PACKAGE], cwd=dl, check=True)
        debs = sorted(dl.glob(f"{PACKAGE}_*.deb"))
    log(f"unpacking {debs[-1].name} ...")
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(CACHE / "handbook")], check=True)
    return target


def handbook_pages() -> list[Path]:
    return sorted(handbook_dir().glob("*.html"))


# -- the questions ---------------------------------------------------------------
@dataclass(slots=True)
class Question:
    id: str
    question: str
    answerable: bool
    key: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)  # html files that answer it
    kind: str = ""

    def has_key(self, text: str) -> bool:
        return any(re.search(p, text, re.IGNORECASE) for p in self.key)


def questions() -> list[Question]:
    with open(HERE / "questions.toml", "rb") as fh:
        raw = tomllib.load(fh)
    out = []
    for i, q in enumerate(raw["question"], 1):
        out.append(Question(
            id=q.get("id", f"q{i}"), question=q["question"], answerable=q.get("answerable", True),
            key=list(q.get("key", [])), kind=q.get("kind", ""),
            pages=[q["page"]] if isinstance(q.get("page"), str) else list(q.get("page", [])),
        ))
    return out


# -- an app with the handbook ingested -----------------------------------------
@dataclass(slots=True)
class Harness:
    client: Any
    app: Any
    key: str
    bot_id: str
    page_of_source: dict[str, str]  # sourceId -> html file name

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.key}


@contextlib.contextmanager
def harness(**overrides: Any) -> Iterator[Harness]:
    """A TestClient over the real app (real models) with the handbook ingested."""
    from litestar.testing import TestClient

    from helpfaster_box.web.app import create_app
    from helpfaster_box.organizations.service import bootstrap
    from helpfaster_box.settings import load_settings

    DATA.mkdir(parents=True, exist_ok=True)
    settings = load_settings(None, {"data_dir": str(DATA), "log_level": "warning", **overrides})
    key = bootstrap(settings)
    state: dict[str, Any] = json.loads(STATE.read_text()) if STATE.exists() else {}
    if key:  # a fresh database: whatever state we had belongs to an older one
        state = {"key": key}
    if "key" not in state:
        raise SystemExit(f"{DATA} has a database but {STATE} has no key: delete {CACHE / 'data'} and rerun")
    t0 = time.perf_counter()
    with TestClient(create_app(settings), timeout=600) as client:
        log(f"app started in {time.perf_counter() - t0:.1f}s")
        h = {"x-api-key": state["key"]}
        if "bot_id" not in state:
            bot = client.post("/v1/chatbots", json={"name": "Debian handbook"}, headers=h)
            bot.raise_for_status()
            state["bot_id"], state["sources"] = bot.json()["id"], {}
            STATE.write_text(json.dumps(state, indent=1))
        bot_id = state["bot_id"]
        sources: dict[str, str] = state.setdefault("sources", {})  # file name -> sourceId
        todo = [p for p in handbook_pages() if p.name not in sources]
        if todo:
            log(f"uploading {len(todo)} handbook pages ...")
            t0 = time.perf_counter()
            for p in todo:
                r = client.post(
                    f"/v1/chatbots/{bot_id}/sources",
                    files={"file": (p.name, p.read_bytes(), "text/html")},
                    data={"url": f"https://debian-handbook.info/browse/stable/{p.name}"},
                    headers=h,
                )
                if r.status_code != 202:
                    raise SystemExit(f"upload of {p.name} failed: {r.status_code} {r.text}")
                sources[p.name] = r.json()["id"]
            STATE.write_text(json.dumps(state, indent=1))
            client.app.state.knowledge.wait_idle(3600)
            log(f"ingested in {time.perf_counter() - t0:.0f}s")
        listed = _list_sources(client, bot_id, h)
        bad = [s for s in listed if s["status"] != "ready"]
        if bad:
            client.app.state.knowledge.wait_idle(3600)
            listed = _list_sources(client, bot_id, h)
            bad = [s for s in listed if s["status"] != "ready"]
        if bad:
            log(f"warning: {len(bad)} sources not ready: {[(s['filename'], s['status'], s.get('error')) for s in bad][:5]}")
        chunks = sum(s.get("chunkCount") or 0 for s in listed)
        log(f"{len(listed)} sources, {chunks} chunks")
        yield Harness(client, client.app, state["key"], bot_id, {v: k for k, v in sources.items()})


def _list_sources(client: Any, bot_id: str, h: dict[str, str]) -> list[dict[str, Any]]:
    out, cursor = [], None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        r = client.get(f"/v1/chatbots/{bot_id}/sources", params=params, headers=h)
        r.raise_for_status()
        body = r.json()
        out += body["data"]
        if not body["hasMore"]:
            return out
        cursor = body["nextCursor"]


def page_of_url(url: str | None) -> str | None:
    """The html file name a hit's url points at (`.../apt.html#anchor` -> apt.html)."""
    if not url:
        return None
    return url.split("#", 1)[0].rsplit("/", 1)[-1]


# -- results.md ------------------------------------------------------------------
RESULTS = HERE / "results.md"
RESULTS_HEADER = (
    "# Quality results on the Debian Administrator's Handbook\n\n"
    "Written by `tests/quality/eval_retrieval.py` and `tests/quality/eval_answers.py`"
    " (each rewrites its own section). See README.md for what is measured.\n"
)


def write_section(name: str, text: str) -> None:
    """Replace (or append) the `name` section of results.md, leaving the others."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    body = RESULTS.read_text() if RESULTS.exists() else RESULTS_HEADER
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in body and end in body:
        head, rest = body.split(start, 1)
        body = head + block + rest.split(end, 1)[1]
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(body)


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
