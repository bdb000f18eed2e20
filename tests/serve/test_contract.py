"""Property-based contract run of the OpenAPI document (schemathesis): on any generated input the server
answers no 5xx, and every status and content type it answers is one the document declares."""

from __future__ import annotations

import itertools

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="the contract run needs schemathesis (requirements-dev.txt)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import content_type_conformance, not_a_server_error, status_code_conformance  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


def test_no_server_error_and_only_declared_statuses(make_client) -> None:
    # 'testserver' is the Host header of schemathesis' ASGI transport
    client = make_client(allowed_hosts=("testserver",), queue_size=64)
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    statuses: dict[str, set[int]] = {}
    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def run(case) -> None:
            response = case.call()
            label = f"{case.operation.label} ({case.meta.generation.mode.value})"
            statuses.setdefault(label, set()).add(response.status_code)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to get wrong (no parameters)
    answered = set().union(*statuses.values())
    assert {200, 422} <= answered, statuses  # the run reached both valid and invalid inputs
