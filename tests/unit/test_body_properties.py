"""Property tests (bounded, derandomised) for what stands between a request body and storage:
the nesting check of the body middleware and config validation."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.api.middleware import json_depth_exceeds
from monitor.config import parse_config
from monitor.errors import ConfigError

BOUNDED = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                           max_size=3), max_leaves=30)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@BOUNDED
@given(value=VALUES, limit=st.integers(0, 8))
@example(value={"a": '"[[[[\\\\"'}, limit=1)
@example(value=[["\\"], "]]]"], limit=2)
def test_the_nesting_check_agrees_with_the_parser(value: Any, limit: int) -> None:
    body = json.dumps(value).encode()
    assert json_depth_exceeds(body, limit) == (depth(value) > limit)


CONFIG_KEYS = ["name", "source", "prefix", "container", "format", "judge", "provider", "model", "endpoint",
               "base_url", "api_key_setting", "metrics", "coherence", "tone", "prompt", "required", "alerts",
               "webhook_url", "emails", "sampling_rate", "window", "columns", "enabled", "acceptable_score"]
CONFIGS = st.recursive(SCALARS, lambda inner: st.dictionaries(st.sampled_from(CONFIG_KEYS), inner, max_size=5)
                       | st.lists(inner, max_size=3), max_leaves=30)


@BOUNDED
@given(data=CONFIGS)
@example(data={"name": "abc", "source": {"prefix": "p/"}, "sampling_rate": float("inf")})
@example(data={"name": "abc", "source": {"prefix": "p/"}, "metrics": {"tone": {"prompt": None, "required": None}}})
def test_config_validation_raises_only_config_errors(data: Any) -> None:
    try:
        config = parse_config(data)
    except ConfigError as exc:
        assert exc.details and all({"field", "message"} <= set(d) for d in exc.details)
    else:
        assert parse_config(json.loads(config.model_dump_json())) == config
