"""Property-based API testing from the OpenAPI schema (schemathesis): whatever a client sends, the server answers
with a documented status and never a 500."""

from __future__ import annotations

import re

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from gpulease.api.app import create_app
from gpulease.runtime import Runtime
from tests.conftest import Facility

# The endpoints that read, quote, book and screen; destructive node operations are covered by unit tests.
FUZZED = re.compile(r"^/api/v1/(availability|leases|quotes|prices|gpu-models|screen|customers|reviews|calendar)")


def test_no_server_errors(runtime: Runtime, facility: Facility) -> None:
    facility.nodes(2)
    facility.prices()
    facility.customer()
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime, background=False))
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI document has an invalid operation: {result.err()}"
        operations.append(result.ok())
    fuzzed = [op for op in operations if FUZZED.match(op.path)]
    assert len(fuzzed) >= 15
    for op in fuzzed:

        @given(case=op.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(headers=facility.k.op, checks=[not_a_server_error])

        check()
