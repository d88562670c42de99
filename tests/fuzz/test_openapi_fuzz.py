"""Every JSON route of the OpenAPI document, fuzzed by schemathesis through Envoy on the fuzz mesh:
signed in as a premium listener, and again anonymously.

Each case passes when the answer is not a 5xx, conforms to the document (a declared status, a
body that matches its schema, the declared content type), and, when refused with a 4xx, left
every table's rows unchanged (tests/fuzz/fuzzer.py). Cases are positive (valid by the schema) and
negative (violating it: wrong types, missing fields, out-of-range numbers).

Envoy's `GET /openapi.json`, read without a session the way a web developer's client generator
reads it, must be gen/openapi.json byte for byte; the cases are generated from that file.

Operations that would end the premium account's session or change its credentials or plan
(logout, logout everywhere, password, email and subscription changes, account deletion) run as a
throwaway account registered for that case, so the next case still has a session. A self-ban needs
the admin role, which the premium caller lacks: those cases are refusals like any other.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from meshctl import mesh
from meshctl.protos import GEN_DIR
from tests.fuzz.fuzzer import Fuzzer

DOCUMENT = GEN_DIR / "openapi.json"
# Per operation and caller; negative and positive cases share it.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "70"))
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
# Each would end the fuzz account's own session, change its credentials or plan, or delete it.
OWN_ACCOUNT_OPERATIONS = frozenset(
    {"Logout", "LogoutEverywhere", "ChangePassword", "ChangeEmail", "UpdateSubscription", "DeleteAccount"}
)


def test_envoy_serves_the_document(running_mesh: mesh.Mesh) -> None:
    """Without a session, byte for byte the generated gen/openapi.json."""
    served = requests.get(f"{running_mesh.envoy_url}/openapi.json", timeout=10)
    assert served.status_code == 200, served.text[:200]
    assert served.headers["content-type"] == "application/json"
    assert served.content == DOCUMENT.read_bytes(), "Envoy serves a stale document"


@pytest.fixture(scope="session")
def fuzzer(running_mesh: mesh.Mesh) -> Iterator[Fuzzer]:
    # Recommendations answer 503 until a batch build has run (make up runs one).
    mesh.build_recommendations(running_mesh)
    runner = Fuzzer(running_mesh.envoy_url, running_mesh.database_url)
    yield runner
    runner.close()


def throwaway_token(fuzzer: Fuzzer) -> str:
    """A new premium-less account's token: register and log in through Envoy."""
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
    password = f"pw-{secrets.token_hex(8)}"
    reply = fuzzer.http.post(
        f"{fuzzer.envoy_url}/api/auth/register",
        json={"email": email, "password": password, "display_name": "Fuzz"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    reply = fuzzer.http.post(
        f"{fuzzer.envoy_url}/api/auth/login", json={"email": email, "password": password}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    fuzzer.settle()
    return str(reply.json()["access_token"])


# The same file Envoy serves (checked above); base URLs come at run time (the mesh's ports are free ones).
schema = schemathesis.openapi.from_path(DOCUMENT)
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
)


@schema.parametrize()
@FUZZ_SETTINGS
def test_premium(case: schemathesis.Case, demo_token: str, fuzzer: Fuzzer) -> None:
    token = demo_token
    if case.operation.definition.raw.get("operationId") in OWN_ACCOUNT_OPERATIONS:
        token = throwaway_token(fuzzer)
    fuzzer.run("premium", case, {"authorization": f"Bearer {token}"})


@schema.parametrize()
@FUZZ_SETTINGS
def test_anonymous(case: schemathesis.Case, fuzzer: Fuzzer) -> None:
    response = fuzzer.run("anonymous", case, {})
    if case.operation.definition.raw.get("security") != []:
        # Every route behind a session refuses a caller without one, whatever else is wrong.
        assert response.status_code in {400, 401, 404, 413, 415}, (response.status_code, response.text[:200])
