"""OpenAPI at /v1/openapi.json and Swagger UI at /v1/docs, with every asset served
from the swagger-ui-bundle package: the appliance is air-gapped, so no CDN.

Litestar generates each operation's success schema from the handler's return type.
What it cannot know is which errors an operation answers, and it documents its own
validation body instead of ours. `truthful` fixes both from the routes themselves:
every /v1 operation gets the standard error body for 400 (invalid input), 401 (key),
429 (rate limit) and 500; 404 when the path names an object; 413 and 415 when it
takes a body; 403 when an admin guard protects it; and the statuses a handler
declares with `opt={"errors": (...)}` (409 conflicts, 503 unavailable or busy).
It also adds the OpenAPI links that chain create -> read -> update -> delete (web/links.py).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import swagger_ui_bundle
from litestar import Litestar, Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router

from helpfaster_box.web.auth import admin_only
from helpfaster_box.web.errors import ERROR_CODES
from helpfaster_box.web.links import add_links

ASSETS = "/v1/docs/assets"


def openapi_config(version: str) -> OpenAPIConfig:
    swagger = SwaggerRenderPlugin(
        path="/",
        js_url=f"{ASSETS}/swagger-ui-bundle.js",
        css_url=f"{ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
        favicon="",
    )
    return OpenAPIConfig(
        title="HelpFaster Box API",
        version=version,
        path="/v1/docs",
        render_plugins=[swagger],
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(type="apiKey", name="x-api-key", security_scheme_in="header")
            }
        ),
        security=[{"apiKey": []}],
    )


def docs_assets_router() -> Any:
    return create_static_files_router(
        path=ASSETS, directories=[swagger_ui_bundle.swagger_ui_path], include_in_schema=False
    )


ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "additionalProperties": False,
    "properties": {
        "error": {"type": "string", "enum": ERROR_CODES},
        "message": {"type": "string", "minLength": 1},
        "details": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["message"],
                "properties": {"field": {"type": ["string", "null"]}, "message": {"type": "string"}},
            },
        },
    },
}
ERROR_TEXT = {
    400: "The request is invalid (body, parameters or cursor).",
    401: "No valid API key.",
    403: "This key's role may not do this.",
    404: "No such object in this organization.",
    409: "The object's current state does not allow this.",
    413: "The body is larger than the limit.",
    415: "The body's Content-Type is not accepted here.",
    429: "Over the organization's rate limit; see Retry-After.",
    500: "A failure on the server's side (logged, never detailed).",
    503: "A component is busy (overloaded, see Retry-After) or not running (unavailable).",
}
BASE_ERRORS = (400, 401, 429, 500)
BODY_METHODS = {"POST", "PUT", "PATCH"}
PUBLIC = {"/v1/health", "/v1/openapi.json"}
_PARAM = re.compile(r"\{(\w+):\w+\}")


def _error_statuses(handler: HTTPRouteHandler, method: str, path: str) -> set[int]:
    statuses = set(BASE_ERRORS)
    if "{" in path:
        statuses.add(404)
    if method in BODY_METHODS:
        statuses |= {413, 415}
    if any(getattr(g, "func", g) is admin_only for g in handler.resolve_guards()):
        statuses.add(403)
    statuses |= set(handler.opt.get("errors", ()))
    return statuses


def _extra_success(handler: HTTPRouteHandler, responses: dict[str, Any]) -> None:
    """Success bodies the return type does not show: SSE chat, CSV lists, a duplicate upload."""
    ok = responses.get(str(handler.status_code), {})
    if handler.opt.get("sse"):
        done = ok.get("content", {}).get("application/json", {}).get("schema", {})
        ok.setdefault("content", {})["text/event-stream"] = {"schema": _sse_events(done)}
    if handler.opt.get("csv"):
        ok.setdefault("content", {})["text/csv"] = {"schema": {"type": "string"}}
    if media := handler.opt.get("media"):  # a streamed file: its media types replace Litestar's guess
        ok["content"] = {m: {"schema": {"type": "string"}} for m in media}
    if (struct := handler.opt.get("duplicate")) is not None:
        responses["200"] = {
            "description": "The same content was added before: the existing source.",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{struct.__name__}"}}},
        }


def _request_body(handler: HTTPRouteHandler, op: dict[str, Any], components: dict[str, Any]) -> None:
    """A body the handler reads itself (an upload: multipart or JSON), from its `bodies` opt:
    a media type -> a JSON schema, or a msgspec type whose schemas join the components."""
    bodies = handler.opt.get("bodies")
    if not bodies:
        return
    content: dict[str, Any] = {}
    for media, spec in bodies.items():
        if isinstance(spec, dict):
            content[media] = {"schema": spec}
            continue
        (schema,), defs = msgspec.json.schema_components((spec,), ref_template="#/components/schemas/{name}")
        components.update(defs)
        content[media] = {"schema": schema}
    op["requestBody"] = {"required": True, "content": content}


def _sse_events(done: dict[str, Any]) -> dict[str, Any]:
    """One Server-Sent Event (OpenAPI 3.1 reads `schema` of an event stream per event): token
    events, then one done (the JSON reply body) or error (the error body). Documented as a
    string before, which no event is (found by the stateful fuzz)."""

    def event(name: str, data: dict[str, Any]) -> dict[str, Any]:
        payload = {"type": "string", "contentMediaType": "application/json", "contentSchema": data}
        return {
            "type": "object",
            "required": ["event", "data"],
            "properties": {"event": {"const": name}, "data": payload},
        }

    token = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
    return {
        "oneOf": [event("token", token), event("done", done), event("error", ERROR_REF)],
        "description": "token events, then one done (the reply body) or error (the error body) event",
    }


def _any_of(responses: dict[str, Any]) -> None:
    """A return type `A | B` is documented by Litestar as oneOf [A, B]: exactly one must match.
    Found by the stateful fuzz on real objects: a full ChatbotOut also matches the
    ChatbotPublicOut subset, and `Page[X] | Response[str]` reads as oneOf [Page, {}], where
    `{}` matches anything, so no valid answer was valid. A response is any one of them."""
    for status, response in responses.items():
        body = response.get("content", {}).get("application/json", {}) if status.startswith("2") else {}
        alternatives = [a for a in body.get("schema", {}).get("oneOf", []) if a]
        if len(alternatives) == 1:
            body["schema"] = alternatives[0]
        elif alternatives:
            body["schema"] = {"anyOf": alternatives}


def _request_struct_names() -> set[str]:
    """Names of every request body struct (subclasses of schemas.Struct, unknown fields forbidden)."""
    from helpfaster_box.schemas import Struct

    names: set[str] = set()
    todo = list(Struct.__subclasses__())
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def truthful(app: Litestar) -> dict[str, Any]:
    """The generated document with every operation's real error responses (see module doc)."""
    schema = app.openapi_schema.to_schema()
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ERROR_SCHEMA
    for name in _request_struct_names():  # msgspec rejects unknown fields: say so
        if isinstance(components.get(name), dict):
            components[name]["additionalProperties"] = False
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = _PARAM.sub(r"{\1}", route.path)
        item = schema["paths"].get(path)
        if item is not None and path in PUBLIC:
            for op in item.values():  # Litestar drops an empty `security`: say "no key" here
                op["security"] = []
        if item is None or path in PUBLIC:
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                op = item.get(method.lower())
                if op is None:
                    continue
                responses = op.setdefault("responses", {})
                if "204" in responses:  # no body, whatever the handler's Response type says
                    responses["204"].pop("content", None)
                for status in sorted(_error_statuses(handler, method, path)):
                    responses[str(status)] = {
                        "description": ERROR_TEXT[status],
                        "content": {"application/json": {"schema": ERROR_REF}},
                    }
                _extra_success(handler, responses)
                _any_of(responses)
                _request_body(handler, op, components)
    add_links(schema)
    return schema


@get("/openapi.json", include_in_schema=False, tags=["Docs"])
async def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The schema at the documented address (built once per app)."""
    state = request.app.state
    if getattr(state, "openapi_document", None) is None:
        state.openapi_document = msgspec.json.encode(truthful(request.app))
    return Response(state.openapi_document, media_type="application/json")
