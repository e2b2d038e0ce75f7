"""`GET /metrics` (Prometheus text format) and the levels it reads at scrape time.

Served on the API port beside `/v1`, not under it: no API key, no rate limit (a
scraper is not an organization); `metrics_token` adds a bearer token when the port is
reachable by more than the monitoring host, `metrics_enabled = false` removes the route.
The levels below are read from where they already live — the engine's `status()`, the
sources and deliveries tables, the database file — when Prometheus asks, so nothing has
to keep a copy in step. A scrape costs two small DB counts (~1-3 ms) in a worker thread.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State

from helpfaster_box import __version__
from helpfaster_box.errors import Unauthorized
from helpfaster_box.knowledge import queries as src_q
from helpfaster_box.observability.metrics import CONTENT_TYPE, GaugeValue, Metrics
from helpfaster_box.webhooks import queries as webhooks_q

MODELS = {"chat": "chatModel", "embedding": "embeddingModel"}  # metric label -> readiness check


@get("/metrics", include_in_schema=False, media_type=CONTENT_TYPE)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    state = request.app.state
    token = state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise Unauthorized("GET /metrics needs 'Authorization: Bearer <metrics_token>'.")
    body = await asyncio.to_thread(state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE)


def register_gauges(metrics: Metrics, state: State) -> None:
    """Scrape-time gauges over the app's state (resources appear as the lifespan opens them)."""

    def engine(field: str) -> GaugeValue:
        eng = state.get("engine")
        return None if eng is None else eng.status()[field]

    def models() -> GaugeValue:
        readiness = state.readiness
        return {
            (label,): float(check in readiness and readiness[check]() == "ok")
            for label, check in MODELS.items()
        }

    def db_read(fn: Any) -> GaugeValue:
        db = state.get("db")
        if db is None:
            return None
        return {(status,): n for status, n in db.read(fn).items()}

    def db_bytes() -> GaugeValue:
        path = state.settings.db_path
        wal = path.with_name(path.name + ".wal")
        return {(name,): p.stat().st_size if p.exists() else 0 for name, p in (("db", path), ("wal", wal))}

    metrics.gauge(
        "helpfaster_build_info", "Version of HelpFaster Box.", lambda: {(__version__,): 1}, ["version"]
    )
    metrics.gauge("helpfaster_model_loaded", "1 when the model is loaded and serving.", models, ["model"])
    metrics.gauge(
        "helpfaster_inference_queue_depth",
        "Generation requests waiting for the chat engine.",
        lambda: engine("queued"),
    )
    metrics.gauge(
        "helpfaster_inference_active_sequences",
        "Generations being decoded together right now.",
        lambda: engine("active"),
    )
    metrics.gauge(
        "helpfaster_inference_max_sequences",
        "Generations the engine decodes together at most (llm_max_sequences).",
        lambda: engine("max_sequences"),
    )
    metrics.gauge(
        "helpfaster_ingestion_backlog",
        "Knowledge sources queued or being processed.",
        lambda: db_read(src_q.backlog),
        ["status"],
    )
    metrics.gauge(
        "helpfaster_webhook_backlog",
        "Webhook deliveries pending (waiting or retrying) or in flight, and events not yet fanned out.",
        lambda: db_read(webhooks_q.backlog),
        ["status"],
    )
    metrics.gauge(
        "helpfaster_database_bytes", "Size of the DuckDB file and its write-ahead log.", db_bytes, ["file"]
    )
