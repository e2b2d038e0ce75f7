"""Schemathesis against a real `serve`: every operation of /v1/openapi.json, with a valid key,
fed schema-valid and schema-violating data; the standard checks must all hold.

Checks: no server error, status codes / content types / bodies as the document declares,
negative (schema-violating) data rejected, auth not ignored. Not `positive_data_acceptance`:
some rules cannot be written in JSON Schema (an opaque cursor must be one the API returned, a
webhook host must resolve to an allowed address, no NUL in text, nesting depth), so a valid-
looking value may rightly be a 400.

Bounded for CI (HELPFASTER_FUZZ_EXAMPLES per operation and mode, default 10: ~400 requests,
~30 s); set it to 200 for a longer run on demand.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from schemathesis.checks import positive_data_acceptance
from support.server import KEY_RE, Server

pytestmark = pytest.mark.e2e  # ~15 s: runs in CI (slow is opt-in)

EXAMPLES = int(os.environ.get("HELPFASTER_FUZZ_EXAMPLES", "10"))
UNLIMITED = {"HELPFASTER_RATE_LIMIT_SCALE": "100000000", "HELPFASTER_RATE_LIMIT_AUTH_FAILURES": "100000000"}


def test_every_operation_holds_to_its_openapi_document_under_fuzzing(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", env=UNLIMITED)
    try:
        key = server.wait_for_line(KEY_RE, timeout=60).group(0)
        server.wait_healthy()
        # The key as the document's apiKey scheme: schemathesis then never "mutates" it away
        # for negative data (and still checks that requests without it are refused).
        config = schemathesis.Config.from_str(f'[auth.openapi.apiKey]\napi_key = "{key}"\n')
        schema = schemathesis.openapi.from_url(f"{server.url}/v1/openapi.json", config=config)
        failures: list[tuple[str, str]] = []
        operations, examples = 0, 0
        statuses: dict[int, int] = {}
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            strategy = operation.as_strategy(
                generation_mode=schemathesis.GenerationMode.POSITIVE
            ) | operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE)

            @given(case=strategy)
            @hsettings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                nonlocal examples
                examples += 1
                response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            try:
                run()
            except Exception as exc:  # every operation is tried; failures are reported together
                failures.append((operation.label, str(exc)[:2000]))
        print(f"fuzz: {operations} operations, {examples} examples, {len(failures)} failing, {statuses}")
        assert operations >= 30
        # The key was used (negative cases without it are the 401s): real answers came back.
        assert sum(n for code, n in statuses.items() if code < 300) >= 10, statuses
        assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures)
        assert server.proc.poll() is None
        assert "Traceback" not in "".join(server.stderr)
    finally:
        server.kill()
