"""OpenAPI at /v1/openapi.json and Swagger UI at /v1/docs, with every asset served
from the swagger-ui-bundle package: the appliance is air-gapped, so no CDN."""

from __future__ import annotations

from typing import Any

import msgspec
import swagger_ui_bundle
from litestar import Request, Response, get
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router

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


@get("/openapi.json", include_in_schema=False, tags=["Docs"])
async def openapi_json(request: Request) -> Response[bytes]:
    """The schema at the documented address; the docs UI reads its own copy."""
    schema = request.app.openapi_schema.to_schema()
    return Response(msgspec.json.encode(schema), media_type="application/json")
