"""The helpfaster-box command, driven in-process with click's CliRunner."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner
from litestar.testing import TestClient
from support.helpers import run_cli

from helpfaster_box import __version__
from helpfaster_box.cli.main import main
from helpfaster_box.web.app import create_app


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output and "helpfaster-box" in result.output


def test_orgs_create_list_set_plan(settings):
    out = run_cli(settings, "orgs", "create", "acme", "--plan", "starter").output
    assert "acme" in out and re.search(r"org_\w+", out)
    run_cli(settings, "orgs", "create", "globex")  # default plan

    listed = run_cli(settings, "orgs", "list", "--json").stdout.splitlines()
    orgs = {o["name"]: o for o in map(json.loads, listed)}
    assert set(orgs) == {"acme", "globex"}
    assert orgs["acme"]["plan"] == "starter" and orgs["globex"]["plan"] == "free"
    assert all(o["id"].startswith("org_") and o["createdAt"].endswith("Z") for o in orgs.values())

    run_cli(settings, "orgs", "set-plan", "globex", "scale")
    plain = run_cli(settings, "orgs", "list").stdout
    assert re.search(r"scale\s+globex", plain) and re.search(r"starter\s+acme", plain)

    dup = run_cli(settings, "orgs", "create", "acme", ok=False)
    assert dup.exit_code != 0 and "already exists" in dup.output
    bad_plan = run_cli(settings, "orgs", "create", "x", "--plan", "platinum", ok=False)
    assert bad_plan.exit_code != 0 and "platinum" in bad_plan.output


def test_keys_create_json_is_exactly_one_object_and_the_key_works(settings):
    run_cli(settings, "orgs", "create", "acme", "--plan", "growth")
    result = run_cli(settings, "keys", "create", "--org", "acme", "--role", "admin", "--name", "ci", "--json")
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    made = json.loads(lines[0])
    assert set(made) == {"id", "key", "org", "role"}
    assert made["org"] == "acme" and made["role"] == "admin" and made["id"].startswith("key_")
    assert re.fullmatch(r"hf_live_[0-9A-Za-z]{32}", made["key"])

    with TestClient(create_app(settings)) as client:
        me = client.get("/v1/organization", headers={"x-api-key": made["key"]})
        assert me.status_code == 200 and me.json()["name"] == "acme" and me.json()["plan"] == "growth"
        assert me.headers["x-ratelimit-limit"] == "120"
        listed = client.get("/v1/api-keys", headers={"x-api-key": made["key"]}).json()["data"]
        assert [k["name"] for k in listed] == ["ci"]


def test_keys_create_plain_prints_the_key_once(settings):
    run_cli(settings, "orgs", "create", "acme")
    out = run_cli(settings, "keys", "create", "--org", "acme").stdout
    keys = re.findall(r"hf_live_[0-9A-Za-z]{32}", out)
    assert len(keys) == 1 and "member" in out
    listing = run_cli(settings, "keys", "list").stdout
    assert keys[0] not in listing


def test_keys_list_and_revoke(settings):
    run_cli(settings, "orgs", "create", "acme")
    run_cli(settings, "orgs", "create", "globex")
    a = json.loads(run_cli(settings, "keys", "create", "--org", "acme", "--name", "portal", "--json").stdout)
    g = json.loads(run_cli(settings, "keys", "create", "--org", "globex", "--role", "admin", "--json").stdout)

    listing = run_cli(settings, "keys", "list").stdout
    assert a["id"] in listing and g["id"] in listing and "portal" in listing
    assert a["key"] not in listing and a["key"][:12] in listing  # prefix only
    only_acme = run_cli(settings, "keys", "list", "--org", "acme").stdout
    assert a["id"] in only_acme and g["id"] not in only_acme

    assert a["id"] in run_cli(settings, "keys", "revoke", a["id"]).output
    line = next(ln for ln in run_cli(settings, "keys", "list").stdout.splitlines() if a["id"] in ln)
    assert "revoked" in line
    again = run_cli(settings, "keys", "revoke", a["id"], ok=False)
    assert again.exit_code != 0 and a["id"] in again.output
    unknown = run_cli(settings, "keys", "revoke", "key_doesnotexist", ok=False)
    assert unknown.exit_code != 0

    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/chatbots", headers={"x-api-key": a["key"]}).status_code == 401
        assert client.get("/v1/chatbots", headers={"x-api-key": g["key"]}).status_code == 200


def test_unknown_org_is_a_clear_error(settings):
    run_cli(settings, "orgs", "create", "acme")
    for args in (
        ["keys", "create", "--org", "nope"],
        ["orgs", "set-plan", "nope", "free"],
        ["keys", "list", "--org", "nope"],
    ):
        result = run_cli(settings, *args, ok=False)
        assert result.exit_code != 0, args
        assert "nope" in result.output and "orgs list" in result.output, result.output
        assert "Traceback" not in result.output


def test_data_dir_from_environment(tmp_path):
    runner = CliRunner()
    env = {"HELPFASTER_DATA_DIR": str(tmp_path / "from-env")}
    assert runner.invoke(main, ["orgs", "create", "envorg"], env=env).exit_code == 0
    assert (tmp_path / "from-env" / "helpfaster.duckdb").exists()
    assert "envorg" in runner.invoke(main, ["orgs", "list"], env=env).output


def test_bad_config_file_is_a_clear_error(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("prot = 1\n")
    result = CliRunner().invoke(main, ["orgs", "list", "--config", str(cfg), "--data-dir", str(tmp_path)])
    assert result.exit_code != 0 and "prot" in result.output and "Traceback" not in result.output


def test_write_commands_fail_clearly_while_a_server_holds_the_database(settings, hold_database):
    run_cli(settings, "orgs", "create", "acme")
    hold_database(settings.db_path)
    for args in (["keys", "create", "--org", "acme", "--json"], ["orgs", "create", "other"]):
        result = run_cli(settings, *args, ok=False)
        assert result.exit_code != 0, args
        assert "API" in result.output and "in use" in result.output, result.output
        assert "Traceback" not in result.output
        assert not result.stdout.strip().startswith("{")  # no half-made key printed
