"""Digest of what the lock files are made from: pyproject's requires-python, dependencies
and extras, and scripts/build-requirements.in. scripts/lock writes it into each lock file;
install.sh refuses a lock whose digest differs (a dependency was added without relocking)."""

import hashlib
import json
import tomllib
from pathlib import Path

root = Path(__file__).resolve().parent.parent
project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
inputs = {key: project.get(key) for key in ("requires-python", "dependencies", "optional-dependencies")}
inputs["build"] = (root / "scripts" / "build-requirements.in").read_text()
print(hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16])
