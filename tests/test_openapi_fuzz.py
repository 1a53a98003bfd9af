"""Every operation of the served OpenAPI document, fuzzed with input that fits it and
input that does not, by a staff token holding every scope: no input gets a 500, and
the answers keep to the document (status codes, content types, response schemas)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi import checks as openapi_checks

from app.core import auth
from tests.support.server import serve
from tests.support.stores import Store
from tests.support.tokens import bearer, staff_token

CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]
# Per operation and mode: enough to reach each validation branch, few enough
# that both stores finish in well under a minute each on two cores.
EXAMPLES = 15


@dataclass
class Served:
    base_url: str
    headers: dict[str, str]


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    with serve(store.env()) as server:
        yield Served(server.base_url, bearer(staff_token(store, *auth.Scope, name="fuzzer")))


def test_no_generated_input_gets_a_500(served: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert "POST /v1/ping" in {operation.label for operation in operations}
    failures: dict[str, str] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, served)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # an operation that takes no input
            except (Exception, FailureGroup) as error:
                failures[f"{operation.label} ({mode.value})"] = str(error)
    assert not failures, "\n\n".join(f"{label}: {error}" for label, error in failures.items())


def _fuzz(operation: APIOperation, mode: GenerationMode, served: Served) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def one_operation(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=served.base_url, headers=served.headers, checks=CHECKS)

    one_operation()
