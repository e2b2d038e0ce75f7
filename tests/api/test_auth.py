"""API keys: lifecycle, roles, tenant isolation, and what a key looks like."""

from __future__ import annotations

import hashlib
import math
import re

KEY_RE = re.compile(r"^hf_live_[0-9A-Za-z]{32}$")


def test_key_create_use_revoke_then_401_on_the_very_next_request(client, admin):
    made = client.post("/v1/api-keys", json={"name": "portal", "role": "member"}, headers=admin)
    assert made.status_code == 201
    new = made.json()
    assert new["name"] == "portal" and new["role"] == "member" and new["id"].startswith("key_")
    headers = {"x-api-key": new["key"]}

    assert client.get("/v1/chatbots", headers=headers).status_code == 200
    assert client.get("/v1/chatbots", headers=headers).status_code == 200  # now cached

    assert client.delete(f"/v1/api-keys/{new['id']}", headers=admin).status_code == 204
    after = client.get("/v1/chatbots", headers=headers)
    assert after.status_code == 401
    assert after.json()["error"] == "unauthorized"
    # Revoking twice is a 404 (no active key), not a silent success.
    assert client.delete(f"/v1/api-keys/{new['id']}", headers=admin).status_code == 404
    # The admin key that revoked it still works.
    assert client.get("/v1/chatbots", headers=admin).status_code == 200


def test_revoked_key_is_listed_as_revoked(client, admin):
    made = client.post("/v1/api-keys", json={"name": "old"}, headers=admin).json()
    client.delete(f"/v1/api-keys/{made['id']}", headers=admin)
    listed = {k["id"]: k for k in client.get("/v1/api-keys", headers=admin).json()["data"]}
    assert listed[made["id"]]["revokedAt"] is not None
    assert all(k["revokedAt"] is None for i, k in listed.items() if i != made["id"])


def test_member_may_use_the_api_but_not_manage_keys(client, admin):
    member = {"x-api-key": client.post("/v1/api-keys", json={"role": "member"}, headers=admin).json()["key"]}
    admin_made = client.post("/v1/api-keys", json={"role": "admin", "name": "second admin"}, headers=admin)
    assert admin_made.status_code == 201
    other_admin = {"x-api-key": admin_made.json()["key"]}

    assert client.post("/v1/chatbots", json={"name": "Member bot"}, headers=member).status_code == 201
    assert client.get("/v1/chatbots", headers=member).status_code == 200
    assert client.get("/v1/organization", headers=member).status_code == 200

    for method, path, body in [
        ("POST", "/v1/api-keys", {"role": "member"}),
        ("GET", "/v1/api-keys", None),
        ("DELETE", f"/v1/api-keys/{admin_made.json()['id']}", None),
    ]:
        resp = client.request(method, path, json=body, headers=member)
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json()["error"] == "forbidden"
    # the forbidden DELETE did not revoke anything
    assert client.get("/v1/api-keys", headers=other_admin).status_code == 200


def test_other_org_sees_404_and_none_of_the_data(org_b, client, admin):
    secret_name = "Acme internal escalation bot"
    secret_instructions = "Never mention Project Nightingale."
    made = client.post(
        "/v1/chatbots",
        json={"name": secret_name, "instructions": secret_instructions},
        headers=admin,
    )
    assert made.status_code == 201
    bot = made.json()

    for headers in (org_b.admin, org_b.member):
        for method, body in [("GET", None), ("PATCH", {"name": "pwned"}), ("DELETE", None)]:
            resp = client.request(method, f"/v1/chatbots/{bot['id']}", json=body, headers=headers)
            assert resp.status_code == 404, (method, resp.text)
            assert resp.json()["error"] == "not_found"
            assert secret_name not in resp.text and "Nightingale" not in resp.text
        listed = client.get("/v1/chatbots", headers=headers).json()
        assert listed["data"] == []

    # Org B cannot revoke org A's key either, and A's chatbot is untouched.
    a_key_id = client.get("/v1/api-keys", headers=admin).json()["data"][0]["id"]
    assert client.delete(f"/v1/api-keys/{a_key_id}", headers=org_b.admin).status_code == 404
    still = client.get(f"/v1/chatbots/{bot['id']}", headers=admin)
    assert still.status_code == 200 and still.json() == bot
    assert client.get("/v1/organization", headers=org_b.admin).json()["name"] == "org-b"
    assert client.get("/v1/organization", headers=admin).json()["name"] == "default"


def test_keys_list_shows_prefix_and_name_never_the_key_or_hash(client, admin, admin_key):
    made = client.post("/v1/api-keys", json={"name": "crm"}, headers=admin).json()
    resp = client.get("/v1/api-keys", headers=admin)
    assert resp.status_code == 200
    text = resp.text
    for plaintext in (admin_key, made["key"]):
        assert plaintext not in text
        assert hashlib.sha256(plaintext.encode()).hexdigest() not in text
    rows = {k["id"]: k for k in resp.json()["data"]}
    assert len(rows) == 2
    crm = rows[made["id"]]
    assert crm["name"] == "crm"
    assert made["key"].startswith(crm["prefix"]) and crm["prefix"].startswith("hf_live_")
    assert len(crm["prefix"]) < len(made["key"]) - 20  # a prefix, not most of the key
    assert all(k.get("key") is None for k in rows.values())
    assert all("hash" not in name.lower() for k in rows.values() for name in k)


def test_keys_have_at_least_160_bits(org_b, client, admin, admin_key):
    keys = [admin_key, org_b.admin_key, org_b.member_key]
    keys += [client.post("/v1/api-keys", json={}, headers=admin).json()["key"] for _ in range(5)]
    for key in keys:
        assert KEY_RE.match(key), key
    assert len(set(keys)) == len(keys)
    assert 32 * math.log2(62) >= 160


def test_key_is_only_accepted_whole_and_in_x_api_key(client, admin_key):
    assert client.get("/v1/chatbots", headers={"authorization": f"Bearer {admin_key}"}).status_code == 401
    assert client.get("/v1/chatbots", headers={"x-api-key": admin_key[:-1]}).status_code == 401
    assert client.get("/v1/chatbots", headers={"x-api-key": admin_key}).status_code == 200
