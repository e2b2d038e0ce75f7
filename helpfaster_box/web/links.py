"""OpenAPI links: which response hands which id to which operation, so a client (and
schemathesis's state machine, tests/e2e/test_fuzz_stateful.py) can chain create -> read ->
update -> delete on real objects instead of guessing ids that are always 404.

Each producer is an operation whose success body names a new object; its links go to
every operation under the object's path that needs no other id, plus the object's own
update (whose 200 links onward in turn, so update -> read -> delete chains as well).
"""

from __future__ import annotations

from typing import Any

# (method, producer path, statuses) -> (target path prefix, {path param: runtime expression})
PRODUCERS: list[tuple[str, str, tuple[str, ...], str, dict[str, str]]] = [
    ("post", "/v1/chatbots", ("201",), "/v1/chatbots/{bot_id}", {"bot_id": "$response.body#/id"}),
    ("patch", "/v1/chatbots/{bot_id}", ("200",), "/v1/chatbots/{bot_id}", {"bot_id": "$response.body#/id"}),
    (
        "post",
        "/v1/chatbots/{bot_id}/sources",
        ("202", "200"),
        "/v1/sources/{source_id}",
        {"source_id": "$response.body#/id"},
    ),
    ("post", "/v1/webhooks", ("201",), "/v1/webhooks/{webhook_id}", {"webhook_id": "$response.body#/id"}),
    (
        "patch",
        "/v1/webhooks/{webhook_id}",
        ("200",),
        "/v1/webhooks/{webhook_id}",
        {"webhook_id": "$response.body#/id"},
    ),
    ("post", "/v1/api-keys", ("201",), "/v1/api-keys/{key_id}", {"key_id": "$response.body#/id"}),
    (
        "post",
        "/v1/chatbots/{bot_id}/publishable-keys",
        ("201",),
        "/v1/chatbots/{bot_id}/publishable-keys/{key_id}",
        {"bot_id": "$request.path.bot_id", "key_id": "$response.body#/id"},
    ),
    (
        "post",
        "/v1/chatbots/{bot_id}/chat",
        ("200",),
        "/v1/conversations/{conv_id}",
        {"conv_id": "$response.body#/conversationId"},
    ),
    (
        "post",
        "/v1/chatbots/{bot_id}/chat",
        ("200",),
        "/v1/messages/{msg_id}",
        {"msg_id": "$response.body#/messageId"},
    ),
    (
        "post",
        "/v1/chatbots/{bot_id}/evaluations",
        ("202",),
        "/v1/evaluations/{run_id}",
        {"run_id": "$response.body#/id"},
    ),
]
METHODS = ("get", "post", "put", "patch", "delete")


def _needs(path: str) -> set[str]:
    return {part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")}


def add_links(schema: dict[str, Any]) -> int:
    """Write each producer's links into the document; returns how many were added."""
    paths: dict[str, Any] = schema.get("paths", {})
    added = 0
    for method, producer, statuses, prefix, params in PRODUCERS:
        op = paths.get(producer, {}).get(method)
        if op is None:
            continue
        for path, item in paths.items():
            if not (path == prefix or path.startswith(prefix + "/")) or not _needs(path) <= set(params):
                continue
            for target_method in METHODS:
                target = item.get(target_method)
                if target is None or "operationId" not in target:
                    continue
                used = {k: v for k, v in params.items() if k in _needs(path)}
                for status in statuses:
                    response = op.get("responses", {}).get(status)
                    if response is None:
                        continue
                    name = target["operationId"]
                    response.setdefault("links", {})[name] = {"operationId": name, "parameters": used}
                    added += 1
    return added
