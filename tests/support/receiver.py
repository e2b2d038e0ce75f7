"""A Standard Webhooks receiver on loopback that keeps every delivery by its `webhook-id`."""

from __future__ import annotations

import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


class Receiver:
    """Standard Webhooks receiver on loopback: deliveries per `webhook-id`, each verified."""

    def __init__(self) -> None:
        self.secret = ""
        self.lock = threading.Lock()
        self.by_id: dict[str, list[tuple[str, str]]] = defaultdict(list)  # id -> [(type, object id)]
        self.events: list[dict] = []  # every verified delivery's payload, in arrival order
        self.bad: list[str] = []
        self.aborted = 0  # requests cut off before their whole body arrived
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request (a kill -9): not a delivery
                    with receiver.lock:
                        receiver.aborted += 1
                    return
                receiver.record(body, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, body: bytes, headers: dict[str, str]) -> None:
        try:
            event = Webhook(self.secret).verify(body, headers)
        except Exception as exc:
            with self.lock:
                self.bad.append(f"unverified delivery: {exc}")
            return
        with self.lock:
            if event["id"] != headers["webhook-id"]:
                self.bad.append(f"payload id {event['id']} under webhook-id {headers['webhook-id']}")
            self.by_id[headers["webhook-id"]].append((event["type"], event["data"]["id"]))
            self.events.append(event)

    def types(self) -> list[str]:
        with self.lock:
            return [e["type"] for e in self.events]

    def snapshot(self) -> dict[str, list[tuple[str, str]]]:
        with self.lock:
            return {k: list(v) for k, v in self.by_id.items()}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
