"""`llamabatch serve`'s /openapi.json tells the truth: schemathesis, driven by the
server's own schema, sends generated requests (valid ones and ones the schema
refuses, undeclared methods, requests without the API key) to a real server on
a loopback port, with every check on: no 5xx, every status code, content type,
header and body as documented, every valid request accepted and every invalid
one refused, 405 with Allow.

One refusal no JSON schema can state: a prompt whose tokens do not fit the
model's context (400, code context_length_exceeded, as OpenAI answers it; the
schema's 400 says so). Only that one is let through the check that valid
requests are accepted; any other 400 to a request the schema allows fails.

Bounded: a fixed number of examples per operation, a fixed seed and
deterministic generation (the same requests every run), no shrinking.
"""
from __future__ import annotations

from typing import Any

import pytest

httpx = pytest.importorskip("httpx", reason="the server tests need the test extra: pip install '.[test]'")
schemathesis = pytest.importorskip("schemathesis", reason="this test needs the test extra: pip install '.[test]'")
pytest.importorskip("fastapi", reason="the server needs the server extra: pip install '.[server]'")

from schemathesis.checks import positive_data_acceptance  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

from server_process import ServerProcess  # noqa: E402

API_KEY = "schemathesis"
N_CTX = 128  # caps each generated completion (prompt and completion), which bounds the run's time
MAX_EXAMPLES = 25  # per operation and phase


@pytest.fixture(scope="module")
def api_server(minilm_path: str, smollm_path: str):
    s = ServerProcess("--embedding-model", minilm_path, "--model", smollm_path, "--n-parallel", "8",
                      "--n-ctx", str(N_CTX), "--api-key", API_KEY, "--no-access-log").wait_ready()
    yield s
    assert s.stop() == 0, s.log()[-3000:]
    assert " 500 " not in s.log() and "internal error" not in s.log(), s.log()[-3000:]


@pytest.fixture(scope="module")
def api_schema(api_server: ServerProcess) -> Any:
    config = SchemathesisConfig.from_dict({
        "seed": 20261203,
        "headers": {"Authorization": f"Bearer {API_KEY}"},
        "request-timeout": 120,  # a busy 2-core machine is slow, never wrong
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "no-shrink": True,
                       "database": "none"},
        "checks": {"enabled": True},
    })
    return schemathesis.openapi.from_url(f"{api_server.url}/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


def _over_the_context(response: Any) -> bool:
    if response.status_code != 400:
        return False
    try:
        return bool(response.json()["error"]["code"] == "context_length_exceeded")
    except (ValueError, KeyError, TypeError):
        return False


def valid_data_accepted_if_it_fits(ctx: Any, response: Any, case: Any) -> Any:
    """schemathesis' positive_data_acceptance, but for a prompt over the model's context."""
    if _over_the_context(response):
        return None
    return positive_data_acceptance(ctx, response, case)


@schema.parametrize()
def test_the_server_does_what_its_schema_says(case: Any) -> None:
    case.call_and_validate(excluded_checks=[positive_data_acceptance],
                           additional_checks=[valid_data_accepted_if_it_fits])
