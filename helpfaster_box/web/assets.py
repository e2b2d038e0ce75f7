"""The dashboard (`/`, `/static/...`) and the widget (`/widget.js`), served from the
package's `web/static/` directory: plain files, no build step, no CDN.

All 22 files (113 KB) are read into memory once when the app is created, so
a request never touches the disk and a path can only name a file that was there:
there is no path to traverse. Only known file types are served (the README next
to them is not). Every file has an ETag; the dashboard's files are `no-cache`
(revalidated on each load, a 304 when unchanged) because their names carry no
version, so an upgraded box is picked up at once. The widget is cached for five
minutes by the sites embedding it, which load it on every page view.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from litestar import Request, Response, Router, get
from litestar.params import FromPath

from helpfaster_box.errors import NotFound

MEDIA_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}  # Litestar adds "; charset=utf-8" to the text/* types
DASHBOARD_CACHE = "no-cache"
WIDGET_CACHE = "public, max-age=300"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _walk(folder: Traversable, prefix: str, out: dict[str, Asset]) -> None:
    for entry in folder.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            _walk(entry, name + "/", out)
            continue
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if suffix in MEDIA_TYPES and not entry.name.startswith("."):
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            out[name] = Asset(body, MEDIA_TYPES[suffix], etag)


def load_assets() -> dict[str, Asset]:
    """Relative path ('app.js', 'pages/inbox.js') -> the file, for everything under web/static."""
    found: dict[str, Asset] = {}
    _walk(resources.files("helpfaster_box.web") / "static", "", found)
    return found


def _serve(request: Request[Any, Any, Any], name: str, cache: str) -> Response[bytes]:
    asset: Asset | None = request.app.state.assets.get(name)
    if asset is None:
        raise NotFound(f"No file {name} in the dashboard.")
    headers = {"Cache-Control": cache, "ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@get("/", include_in_schema=False)
async def dashboard_index(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _serve(request, "index.html", DASHBOARD_CACHE)


@get("/static/{name:path}", include_in_schema=False)
async def dashboard_file(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    return _serve(request, name.lstrip("/"), DASHBOARD_CACHE)


@get("/widget.js", include_in_schema=False)
async def widget_script(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _serve(request, "widget.js", WIDGET_CACHE)


def assets_router() -> Router:
    return Router(path="/", route_handlers=[dashboard_index, dashboard_file, widget_script])
