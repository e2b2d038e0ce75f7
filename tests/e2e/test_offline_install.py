"""The offline bundle end to end: `./install.sh --make-bundle` here, then, inside a network
namespace with no network at all (`unshare -n`: only a loopback device), extract it,
`./install.sh --from-bundle .`, serve, ingest a document and answer a chat with a source."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = Path(__file__).with_name("offline_check.py")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def offline(script: str, **kw) -> subprocess.CompletedProcess:
    """Run a bash script in a new network namespace whose only device is a loopback."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"]).returncode:
        pytest.fail("unshare -n does not work here: the offline tests need root and util-linux")
    prelude = (
        "set -euo pipefail; ip link set lo up; "
        # no network: the namespace's only interface is the loopback one, and there is no route out
        '[ "$(ip -o link show | wc -l)" = 1 ] && [ -z "$(ip route show default)" ]; '
    )
    return subprocess.run(
        ["unshare", "-n", "bash", "-c", prelude + script], text=True, capture_output=True, **kw
    )


def test_install_from_bundle_without_network_and_serve_a_chat(tmp_path):
    dist = tmp_path / "dist"
    env = {**os.environ, "DIST": str(dist)}
    made = subprocess.run(
        [str(ROOT / "install.sh"), "--make-bundle"], env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stdout + made.stderr
    (tarball,) = dist.glob("helpfaster-box-*.tar")
    assert (dist / f"{tarball.name}.sha256").is_file()

    host = tmp_path / "host"
    host.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "HELPFASTER_", "PYTHONPATH"))}
    installed = offline(f"cd {host} && {ROOT}/install.sh --from-bundle {tarball}", env=clean)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "Verifying every file of the bundle" in installed.stdout
    (tree,) = host.glob("helpfaster-box-*")
    venv_bin = tree / ".venv" / "bin"
    # the installed package is the bundle's tree, not this checkout
    where = subprocess.run(
        [str(venv_bin / "python"), "-c", "import helpfaster_box; print(helpfaster_box.__file__)"],
        capture_output=True,
        text=True,
        env=clean,
        cwd=host,
    )
    assert where.stdout.startswith(str(tree)), where

    data = tmp_path / "data"
    served = offline(
        f"{venv_bin / 'python'} {CHECK} 18099 -- {venv_bin / 'helpfaster-box'} serve --port 18099 --data-dir {data}",
        env=clean,
        cwd=host,
    )
    assert served.returncode == 0, served.stdout + served.stderr
    result = json.loads(served.stdout.strip().splitlines()[-1])
    shown = json.dumps(result)[-4000:]  # the whole reply and the server's last log lines
    assert result["health"]["status"] == "ok", shown
    assert result["source_status"] == "ready" and result["chat_status"] == 200, shown
    assert result["chat"]["answered"] and result["chat"]["sources"][0]["title"] == "VPN guide", shown

    # A damaged bundle is refused before anything is installed.
    (tree / "bundle" / "BUNDLE").write_text("python=3.11\ntampered\n")
    refused = offline(f"{tree}/install.sh --from-bundle {tree}", env=clean)
    assert refused.returncode != 0 and "damaged" in refused.stderr, refused.stdout + refused.stderr
