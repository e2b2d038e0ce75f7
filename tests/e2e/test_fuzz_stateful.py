"""Schemathesis's state machine over the OpenAPI links of /v1/openapi.json (web/links.py),
against a real `serve` with the real models: scenarios chain create -> read -> update ->
delete on real chatbots, sources, webhooks, API keys, publishable keys, conversations and
evaluations, with every standard check on each step plus the stateful ones (a created
object can be read; a deleted one is 404 afterwards).

Bounded for CI: HELPFASTER_FUZZ_SCENARIOS scenarios (default 25) of at most
HELPFASTER_FUZZ_STEPS steps (default 8): ~190 steps, ~20 s on the shared `serve` of
tests/e2e/conftest.py. On demand, e.g. 150 x 15 (~1,600 steps, ~2 min):
`HELPFASTER_FUZZ_SCENARIOS=150 HELPFASTER_FUZZ_STEPS=15 pytest tests/e2e/test_fuzz_stateful.py -s`.
Not `positive_data_acceptance`, for the reasons in test_fuzz.py. Webhooks are linked but
rarely created: a generated URL must resolve to an allowed public address, offline.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hsettings
from schemathesis.checks import positive_data_acceptance

pytestmark = [pytest.mark.e2e, pytest.mark.models]

SCENARIOS = int(os.environ.get("HELPFASTER_FUZZ_SCENARIOS", "25"))
STEPS = int(os.environ.get("HELPFASTER_FUZZ_STEPS", "8"))


def test_linked_operations_hold_to_the_document_in_stateful_scenarios(models_box: Any) -> None:
    server, key = models_box.server, models_box.key
    # Positive data only: the stateless test sends the negative cases (2/5 of stateful
    # steps were negative ones without the key, 401s that end the chain). Only the
    # document's own links: schemathesis's inferred ones chained GET /v1/api-keys ->
    # DELETE /v1/api-keys/{its first id}, revoking the fuzzer's own key (all 401 after).
    config = schemathesis.Config.from_str(
        f'[auth.openapi.apiKey]\napi_key = "{key}"\n[generation]\nmode = "positive"\n'
        "[phases.stateful.inference]\nalgorithms = []\n"
    )
    schema = schemathesis.openapi.from_url(f"{server.url}/v1/openapi.json", config=config)

    statuses: Counter[int] = Counter()
    operations: Counter[str] = Counter()
    linked: Counter[str] = Counter()

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            statuses[response.status_code] += 1
            operations[case.operation.label] += 1
            if any(p.startswith("{") for p in case.operation.path.split("/")) and response.status_code < 300:
                linked[case.operation.label] += 1  # an id that came from an earlier response

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            case.validate_response(
                response, excluded_checks=[positive_data_acceptance], transport_kwargs=kwargs
            )

    Machine.run(
        settings=hsettings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    steps = sum(statuses.values())
    print(
        f"\nstateful: {SCENARIOS} scenarios, {steps} steps, {len(operations)} operations, "
        f"statuses {dict(sorted(statuses.items()))}, 2xx on linked ids {sum(linked.values())} "
        f"across {len(linked)} operations: {dict(linked.most_common())}"
    )
    assert steps >= SCENARIOS, statuses
    assert len(linked) >= 3, linked  # the links were followed, not only the roots
    assert server.proc.poll() is None
    assert "Traceback" not in "".join(server.stderr)
