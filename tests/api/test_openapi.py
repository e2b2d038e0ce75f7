"""/v1/openapi.json tells the truth: every operation has its success schema and declares
the real error body for each error status it can answer (what a generated client and
the schemathesis run hold the server to)."""

from __future__ import annotations

from typing import Any

import pytest
from support.helpers import cli_create_org

from helpfaster_box.web.errors import ERROR_CODES

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def document(client, admin) -> dict[str, Any]:
    r = client.get("/v1/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    return r.json()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items() if m in METHODS]


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def check_error_body(doc: dict[str, Any], body: Any) -> None:
    schema = doc["components"]["schemas"]["ErrorBody"]
    assert isinstance(body, dict) and set(schema["required"]) <= body.keys() <= schema["properties"].keys()
    assert body["error"] in schema["properties"]["error"]["enum"]
    assert isinstance(body["message"], str) and body["message"]


def test_the_error_body_schema_is_the_real_one(document):
    schema = document["components"]["schemas"]["ErrorBody"]
    assert schema["required"] == ["error", "message"]
    assert set(schema["properties"]) == {"error", "message", "details"}
    assert set(schema["properties"]["error"]["enum"]) == set(ERROR_CODES)


def test_every_operation_has_a_success_schema_and_typed_errors(document):
    ops = operations(document)
    assert len(ops) >= 30
    for method, path, op in ops:
        responses = op["responses"]
        ok = [s for s in responses if s.startswith("2")]
        assert ok, (method, path)
        for status in ok:
            if status == "204":
                assert not responses[status].get("content"), (method, path)
                continue
            content = responses[status].get("content") or {}
            assert content, (method, path, status)
            for media in content.values():
                schema = resolve(document, media["schema"])
                assert schema and (schema.get("type") or schema.get("properties") or schema.get("anyOf") or schema.get("oneOf")), (
                    method, path, status, schema,
                )  # fmt: skip
        if path == "/v1/health":
            continue  # public: its 503 is the health body itself
        errors = [s for s in responses if s[0] in "45"]
        assert {"400", "401", "429", "500"} <= set(errors), (method, path, errors)
        for status in errors:
            (media,) = responses[status]["content"].values()
            assert media["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_ids_in_the_path_declare_404_bodies_declare_413_415_admin_routes_403(document):
    for method, path, op in operations(document):
        declared = set(op["responses"])
        if "{" in path:
            assert "404" in declared, (method, path)
        if method in ("post", "patch", "put"):
            assert {"413", "415"} <= declared, (method, path)
        if path.startswith(("/v1/api-keys", "/v1/webhooks", "/v1/webhook-deliveries")):
            assert "403" in declared, (method, path)


def test_real_errors_are_documented_and_match_the_schema(document, client, admin):
    probes = [
        ("get", "/v1/chatbots/{bot_id}", "/v1/chatbots/bot_nope", admin, None, 404),
        ("post", "/v1/chatbots", "/v1/chatbots", admin, {"name": ""}, 400),
        ("post", "/v1/chatbots", "/v1/chatbots", admin, {"name": "x", "bogus": 1}, 400),
        ("get", "/v1/chatbots", "/v1/chatbots", {"x-api-key": "hf_live_" + "x" * 32}, None, 401),
        ("get", "/v1/chatbots", "/v1/chatbots?cursor=%%%", admin, None, 400),
        ("get", "/v1/chatbots", "/v1/chatbots?limit=1000", admin, None, 400),
    ]
    for method, template, url, headers, body, status in probes:
        r = client.request(method.upper(), url, headers=headers, json=body)
        assert r.status_code == status, (url, r.status_code, r.text)
        assert str(status) in document["paths"][template][method]["responses"], (template, status)
        check_error_body(document, r.json())
    r = client.post("/v1/chatbots", headers={**admin, "content-type": "text/plain"}, content=b"x")
    assert r.status_code == 415
    check_error_body(document, r.json())


def test_a_member_key_on_an_admin_route_gets_the_documented_403(tmp_path):
    from litestar.testing import TestClient
    from support.helpers import make_settings

    from helpfaster_box.organizations.service import bootstrap
    from helpfaster_box.web.app import create_app

    settings = make_settings(tmp_path / "data")
    bootstrap(settings)
    org = cli_create_org(settings, "members")
    with TestClient(create_app(settings)) as client:
        doc = client.get("/v1/openapi.json").json()
        r = client.get("/v1/api-keys", headers=org.member)
        assert r.status_code == 403
        assert "403" in doc["paths"]["/v1/api-keys"]["get"]["responses"]
        check_error_body(doc, r.json())


def test_a_union_response_is_any_of_its_structs_not_exactly_one(document):
    """Litestar wrote `A | B` as oneOf; a full ChatbotOut also matches ChatbotPublicOut and
    oneOf [Page, {}] matches nothing exactly once (found by tests/e2e/test_fuzz_stateful.py)."""
    for method, path, op in operations(document):
        for status, response in op["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            assert "oneOf" not in schema and {} not in schema.get("anyOf", []), (method, path, status)
    bot = document["paths"]["/v1/chatbots/{bot_id}"]["get"]["responses"]["200"]
    assert "anyOf" in bot["content"]["application/json"]["schema"]
    leads = document["paths"]["/v1/chatbots/{bot_id}/leads"]["get"]["responses"]["200"]
    assert leads["content"]["application/json"]["schema"]["$ref"].endswith("LeadOut_")


def test_links_chain_create_read_update_delete(document):
    ops = {op["operationId"]: (path, op) for _, path, op in operations(document)}
    links = {
        (path, status, name): link
        for _, path, op in operations(document)
        for status, response in op["responses"].items()
        for name, link in response.get("links", {}).items()
    }
    assert len(links) >= 40, len(links)
    for (_, _, name), link in links.items():
        _, target = ops[link["operationId"]]
        needed = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
        assert set(link["parameters"]) == needed, (name, link, needed)
    targets = {link["operationId"] for link in links.values()}
    for resource in ("Chatbot", "Source", "Webhook"):
        for verb in ("Get", "Delete"):
            assert any(verb in t and resource in t for t in targets), (resource, verb)
    assert any("RevokeKey" in t for t in targets) and any("RevokePublishableKey" in t for t in targets)


def test_the_upload_route_documents_both_bodies_it_reads(document):
    body = document["paths"]["/v1/chatbots/{bot_id}/sources"]["post"]["requestBody"]
    assert set(body["content"]) == {"multipart/form-data", "application/json"}
    form = body["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    for name in ("TextSource", "QASource", "UrlSource"):
        assert document["components"]["schemas"][name]["additionalProperties"] is False
