"""schemathesis over the whole OpenAPI document with every role's key (the admin's is
tests/http/test_fuzz.py's): each role fuzzes the operations its permissions open with a run of
its own, and the operations they do not open with a few cases each. Nothing answers 5xx, a 4xx
is problem+json, and an operation a role's permissions do not open never succeeds for it. A
browser key is sent as a web page sends it (X-Consentry-Key from its origin, for a visitor's
cookie_id)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.schemas import APIOperation

from consentry.auth.models import ROLE_PERMISSIONS, Role
from consentry.http.auth import AUTHENTICATED
from consentry.http.routes import PUBLIC, ROUTES
from tests.conftest import auth
from tests.http.fuzzing import fuzz_app, schema, send

ROLES = [role for role in Role if role is not Role.ADMIN]
ORIGIN = "https://shop.example.com"
VISITOR = "cookie_id=ck-fuzz-visitor-0001"
QUICK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much]
# A role's own operations: the fuzzing proper. The others: enough to show they stay shut.
OPENED = fuzz_settings(max_examples=5, deadline=None, suppress_health_check=QUICK)
SHUT = fuzz_settings(max_examples=1, deadline=None, suppress_health_check=QUICK)


def opens(role: Role, method: str, path: str) -> bool:
    """Whether the permission table lets `role` through to the operation."""
    for route in ROUTES:
        if (route.method, route.path) == (method.upper(), path):
            if route.permission is PUBLIC:
                return True
            if role is Role.BROWSER and route.browser is None:
                return False
            return route.permission == AUTHENTICATED or route.permission in ROLE_PERMISSIONS[role]
    return True  # not in the table (the documents themselves): public


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with fuzz_app(tmp_path_factory.mktemp("fuzz-roles") / "data") as client:
        yield client


@pytest.fixture(scope="module")
def keys(fuzz_client: TestClient) -> dict[Role, dict[str, str]]:
    """The headers each role's key is sent in."""
    made: dict[Role, dict[str, str]] = {}
    for role in ROLES:
        body: dict[str, Any] = {"role": role, "label": f"fuzz {role}"}
        if role is Role.BROWSER:
            body["origins"] = [ORIGIN]
        resp = fuzz_client.post("/v1/api-keys", headers=auth(), json=body)
        assert resp.status_code == 201, resp.text
        key = resp.json()["key"]
        made[role] = (
            {"X-Consentry-Key": key, "Origin": ORIGIN, "X-Consentry-Subject": VISITOR}
            if role is Role.BROWSER
            else auth(key)
        )
    return made


def _operations() -> list[APIOperation]:
    return [result.ok() for result in schema.get_all_operations()]


def _cases(operation: APIOperation) -> st.SearchStrategy[Any]:
    """Requests that fit the document and requests that do not."""
    return operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )


OPERATIONS = _operations()
OPEN = [(r, op) for r in ROLES for op in OPERATIONS if opens(r, op.method, op.path)]
SHUT_TO = [(r, op) for r in ROLES for op in OPERATIONS if not opens(r, op.method, op.path)]


def _name(param: object) -> str:
    if isinstance(param, APIOperation):
        return f"{param.method.upper()} {param.path}"
    return str(param)


@pytest.mark.parametrize(("role", "operation"), OPEN, ids=_name)
def test_no_operation_answers_500_to_a_role_it_opens_to(
    fuzz_client: TestClient, keys: dict[Role, dict[str, str]], role: Role, operation: APIOperation
) -> None:
    @OPENED
    @given(case=_cases(operation))
    def fuzz(case: Any) -> None:
        send(fuzz_client, case, keys[role])

    fuzz()


@pytest.mark.parametrize(("role", "operation"), SHUT_TO, ids=_name)
def test_an_operation_shut_to_a_role_never_succeeds_for_it(
    fuzz_client: TestClient, keys: dict[Role, dict[str, str]], role: Role, operation: APIOperation
) -> None:
    @SHUT
    @given(case=_cases(operation))
    def fuzz(case: Any) -> None:
        resp = send(fuzz_client, case, keys[role])
        assert resp.status_code >= 400, (role, case.method, case.path, resp.status_code)

    fuzz()
