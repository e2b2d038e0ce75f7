"""Backup while `serve` runs, restore into a new data dir, same answers; logs as shipped.

Real processes throughout: `serve` with the real models, the `helpfaster-box backup` and
`restore` commands as an operator types them, a second `serve` on the restored data.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.helpers import VENV_BIN
from support.server import KEY_RE, assert_clean_stop

pytestmark = pytest.mark.e2e

DOC = (
    "# VPN access\n\nTo reach the intranet from home, start the VPN client and sign in with your "
    "badge number.\n\n# Printer E-1337\n\nWhen the printer shows E-1337, open tray 2 and remove the jammed sheet.\n"
)


def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPFASTER_")}
    proc = subprocess.run(
        [str(VENV_BIN / "helpfaster-box"), *args], capture_output=True, text=True, env=env, timeout=300
    )
    if ok:
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return proc


def answers(http: httpx.Client, bot: str) -> dict[str, Any]:
    """What a client sees: chatbots, sources, conversations (with messages), search results."""
    convs = http.get(f"/v1/chatbots/{bot}/conversations").json()
    return {
        "chatbots": http.get("/v1/chatbots").json(),
        "sources": http.get(f"/v1/chatbots/{bot}/sources").json(),
        "conversations": convs,
        "messages": [http.get(f"/v1/conversations/{c['id']}").json() for c in convs["data"]],
        "search": [
            http.post(f"/v1/chatbots/{bot}/search", json={"query": q, "k": 3}).json()
            for q in ("badge number VPN", "E-1337 jammed")
        ],
    }


def test_backup_while_serving_then_restore_gives_identical_answers(tmp_path, servers):
    data_dir, backup_dir, restored_dir = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    server = servers(data_dir, models=True)
    key = server.wait_for_line(KEY_RE, timeout=60).group(0)
    server.wait_healthy(timeout=90)
    with httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=60) as http:
        bot = http.post("/v1/chatbots", json={"name": "Backed up"}).json()["id"]
        up = http.post(
            f"/v1/chatbots/{bot}/sources",
            files={"file": ("it.md", DOC.encode(), "text/markdown")},
            data={"title": "IT"},
        )
        assert up.status_code == 202, up.text
        deadline = time.monotonic() + 120
        while http.get(f"/v1/sources/{up.json()['id']}").json()["status"] != "ready":
            assert time.monotonic() < deadline, "ingestion did not finish"
            time.sleep(0.2)
        chat = http.post(
            f"/v1/chatbots/{bot}/chat", json={"message": "How do I reach the intranet from home?"}
        )
        assert chat.status_code == 200, chat.text
        before = answers(http, bot)

        done = cli("backup", str(backup_dir), "--data-dir", str(data_dir))  # the server holds the DB
        assert "by the running server" in done.stdout, done.stdout
        # the box goes on serving; a change after the backup is not in it
        http.post(f"/v1/chatbots/{bot}/chat", json={"message": "And the printer shows E-1337?"})
        assert len(http.get(f"/v1/chatbots/{bot}/conversations").json()["data"]) == 2

        again = cli("backup", str(backup_dir), "--data-dir", str(data_dir), ok=False)
        assert again.returncode != 0 and "not an empty directory" in again.stderr
        in_use = cli("restore", str(backup_dir), "--data-dir", str(data_dir), "--force", ok=False)
        assert in_use.returncode != 0 and "in use" in in_use.stderr

    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["madeBy"] == "server" and manifest["schemaVersion"] >= 1
    paths = {f["path"] for f in manifest["files"]}
    assert "helpfaster.duckdb" in paths and any(p.startswith("indexes/") for p in paths)
    assert any(p.startswith("uploads/") for p in paths)
    assert all(re.fullmatch(r"[0-9a-f]{64}", f["sha256"]) for f in manifest["files"])

    done = cli("restore", str(backup_dir), "--data-dir", str(restored_dir))
    assert "restored" in done.stdout
    refused = cli("restore", str(backup_dir), "--data-dir", str(restored_dir), ok=False)
    assert refused.returncode != 0 and "--force" in refused.stderr
    cli("restore", str(backup_dir), "--data-dir", str(restored_dir), "--force")

    restored = servers(restored_dir, models=True)
    restored.wait_healthy(timeout=90)
    with httpx.Client(base_url=restored.url, headers={"x-api-key": key}, timeout=60) as http:
        assert answers(http, bot) == before
    assert_clean_stop(restored, restored_dir)
    assert_clean_stop(server, data_dir)
    lines = [json.loads(line) for line in server.stderr if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "helpfaster_box.access"]
    assert {a["route"] for a in access} >= {"/v1/chatbots/{bot_id}/chat", "/v1/sources/{source_id}"}
    assert {a["client"] for a in access} == {"127.0.0.1"}
    assert not (data_dir / ".control.json").exists()  # removed at the clean stop
    stderr = "".join(server.stderr)
    assert key not in stderr and "How do I reach the intranet" not in stderr


def test_backup_without_a_server_and_a_damaged_backup_is_refused(tmp_path, servers):
    data_dir = tmp_path / "data"
    server = servers(data_dir)
    key = server.wait_for_line(KEY_RE).group(0)
    server.wait_healthy()
    with httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=10) as http:
        assert http.post("/v1/chatbots", json={"name": "Offline"}).status_code == 201
    assert_clean_stop(server, data_dir)

    done = cli("backup", str(tmp_path / "b"), "--data-dir", str(data_dir))
    assert "by the running server" not in done.stdout and "backup written" in done.stdout
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["madeBy"] == "cli"
    with (tmp_path / "b" / "helpfaster.duckdb").open("r+b") as fh:
        fh.seek(5000)
        fh.write(b"\x00garbage\x00")
    damaged = cli("restore", str(tmp_path / "b"), "--data-dir", str(tmp_path / "new"), ok=False)
    assert damaged.returncode != 0 and "checksum mismatch" in damaged.stderr
    assert not (tmp_path / "new" / "helpfaster.duckdb").exists()
    Path(tmp_path / "b" / "manifest.json").unlink()
    partial = cli("restore", str(tmp_path / "b"), "--data-dir", str(tmp_path / "new"), ok=False)
    assert "manifest.json" in partial.stderr
