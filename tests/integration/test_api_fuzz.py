"""Property-based requests: no body, however hostile, makes the API answer 5xx.

Two generators, both bounded (a fixed number of examples, no shrinking database, derandomised so a
run is reproducible): hypothesis bodies built from JSON values and config-shaped objects, and
schemathesis cases from the served OpenAPI document, each mutated into a deeply nested or an
oversize variant. Inputs that ever found a failure are kept as explicit `@example`s.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.api import create_app
from monitor.api.serve import BackgroundServer

pytestmark = [pytest.mark.azurite, pytest.mark.slow]
APP = create_app()
ACCEPTABLE = {200, 201, 204, 400, 401, 404, 405, 413, 415, 422}
BOUNDED = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                          HealthCheck.data_too_large])


# --- hypothesis bodies ------------------------------------------------------------------------------
SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=40)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                         max_size=4), max_leaves=20)
FIELDS = ["name", "source", "columns", "sampling_rate", "window", "judge", "metrics", "alerts", "format", "prefix",
          "container", "provider", "endpoint", "base_url", "api_key_setting", "webhook_url", "prompt", "required",
          "enabled", "acceptable_score", "coherence", "politeness", "emails", "min_samples"]
CONFIG_LIKE = st.recursive(
    SCALARS | st.sampled_from(["mdc", "jsonl", "openai", "azure_openai", "heuristic", "https://x.openai.azure.com",
                               "http://169.254.169.254/", "/etc/shadow", "MONITOR_STORAGE", "p/", "hour"]),
    lambda inner: st.dictionaries(st.sampled_from(FIELDS), inner, max_size=6) | st.lists(inner, max_size=3),
    max_leaves=25)


def put(api: TestClient, body: bytes) -> int:
    response = api.put("/api/monitors/fuzz-target", content=body, headers={"content-type": "application/json"})
    assert response.status_code in ACCEPTABLE, (response.status_code, response.text, body[:300])
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}
    return response.status_code


@BOUNDED
@given(body=JSON | CONFIG_LIKE)
@example(body={"source": {"prefix": "p/"}, "sampling_rate": float("inf")})
@example(body={"source": {"prefix": "p/"}, "judge": {"provider": "openai", "model": "m", "requests_per_minute": 2**70}})
@example(body={"source": {"prefix": "p/"}, "metrics": {"tone": {"prompt": "/dev/zero", "required": ["completion"]}}})
@example(body={"source": {"prefix": "p/"},
               "judge": {"provider": "openai", "model": "m", "api_key_setting": "MDC_STORAGE"}})
@example(body={"source": {"prefix": "\x00\ud800"}})
def test_json_bodies_never_answer_5xx(api: TestClient, body: Any) -> None:
    put(api, json.dumps(body).encode())


@BOUNDED
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@example(raw=b"[" * 100_000 + b"]" * 100_000)
@example(raw=b'{"a":' * 60_000 + b"1" + b"}" * 60_000)
@example(raw=b"1" * 5_000)
@example(raw=b'{"source": {"prefix": "p/"}, "sampling_rate": NaN}')
@example(raw=b'{"source": {"prefix": "p/"}, "sampling_rate": 1e999}')
@example(raw=b"\xef\xbb\xbf{}")
@example(raw=b"\xff\xfe")
def test_raw_bodies_never_answer_5xx(api: TestClient, raw: bytes) -> None:
    put(api, raw)


# --- schemathesis cases, nested and inflated ---------------------------------------------------------
def deepen(body: Any, depth: int) -> bytes:
    """`body` wrapped in `depth` arrays, serialised by hand (json.dumps itself recurses)."""
    return b"[" * depth + json.dumps(body).encode() + b"]" * depth


def inflate(body: Any, size: int) -> bytes:
    """`body` with its first field (or a prefix) replaced by a string of `size` characters."""
    if isinstance(body, dict) and body:
        body = {**body, sorted(body)[0]: "x" * size}
    else:
        body = {"source": {"prefix": "x" * size}}
    return json.dumps(body).encode()


MUTATIONS = st.sampled_from(["as_is", "deep", "oversize", "deep_in_string"])
DEPTHS = st.sampled_from([63, 64, 65, 1_000, 50_000, 100_000])
SIZES = st.sampled_from([2_000, 40_000, 999_000, 1_100_000])


# Cases come from the app's OpenAPI document (loaded once, at import, from the ASGI app) and are sent
# over HTTP to the same app served by uvicorn; the first test proves both documents are one.
SCHEMA = schemathesis.openapi.from_asgi("/api/openapi.json", APP)


def test_the_served_document_is_the_fuzzed_one(served: BackgroundServer) -> None:
    assert httpx.get(f"{served.url}/api/openapi.json").json() == APP.openapi()


@SCHEMA.parametrize()
@SCHEMA.given(data=st.data())
@settings(BOUNDED, max_examples=25)
def test_schemathesis_cases_never_answer_5xx(served: BackgroundServer, case: Any, data: Any) -> None:
    """Every operation of the served OpenAPI document over HTTP; request bodies nested up to 100,000
    levels deep or inflated past the body limit (and strings full of brackets, which are not nesting)."""
    kwargs = case.as_transport_kwargs(base_url=served.url)
    kwargs.pop("cookies", None)
    if isinstance(kwargs.get("data"), str | bytes):
        kwargs["content"] = kwargs.pop("data")
    if "json" in kwargs:
        mutation = data.draw(MUTATIONS)
        body = kwargs.pop("json")
        if mutation == "deep":
            kwargs["content"] = deepen(body, data.draw(DEPTHS))
        elif mutation == "oversize":
            kwargs["content"] = inflate(body, data.draw(SIZES))
        elif mutation == "deep_in_string":
            kwargs["content"] = json.dumps({"source": {"prefix": "[{" * 40_000}, "name": body}).encode()
        else:
            kwargs["content"] = json.dumps(body).encode()
        kwargs["headers"] = {**kwargs.get("headers", {}), "content-type": "application/json"}
    response = httpx.request(**kwargs, timeout=60)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
