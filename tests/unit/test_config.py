"""The monitor configuration: defaults, validation errors that name the field, effective metrics."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config import parse_config
from monitor.errors import ConfigError

MINIMAL = {"name": "contoso-chat", "source": {"prefix": "modelDataCollector/contoso-chat/blue/"}}


def _fields(data: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, **kwargs)
    return [d["field"] for d in caught.value.details]


def test_defaults_fill_everything_but_name_and_source() -> None:
    config = parse_config(MINIMAL)
    assert config.sampling_rate == 1.0 and config.window == "hour"
    assert config.source.format == "mdc" and config.source.join_column == "correlationid"
    assert config.judge.provider == "heuristic" and config.judge.max_concurrency == 64
    assert config.judge.adaptive_concurrency is True and config.judge.quota_pool is None
    assert config.alerts.min_samples == 10
    metrics = config.metric_settings()
    assert list(metrics) == ["coherence", "fluency", "groundedness", "relevance", "similarity"]
    assert all(m.enabled and m.acceptable_score == 3 and m.pass_rate_threshold == 0.7 for m in metrics.values())


def test_the_contract_example_parses() -> None:
    config = parse_config({
        **MINIMAL,
        "source": {"format": "mdc", "container": "azureml", "prefix": "modelDataCollector/contoso-chat/blue/",
                   "join_column": "correlationid"},
        "columns": {"prompt": "question", "completion": "answer", "context": "context",
                    "ground_truth": "ground_truth"},
        "sampling_rate": 1.0, "window": "hour",
        "judge": {"provider": "azure_openai", "endpoint": "https://my-aoai.openai.azure.com", "deployment": "gpt-4o",
                  "api_version": "2024-10-21", "max_concurrency": 16},
        "metrics": {"fluency": {"enabled": False}, "groundedness": {"acceptable_score": 4, "pass_rate_threshold": 0.9}},
        "alerts": {"min_samples": 10, "emails": ["ops@contoso.com"], "webhook_url": None},
    })
    assert list(config.enabled_metrics()) == ["coherence", "groundedness", "relevance", "similarity"]
    assert config.enabled_metrics()["groundedness"].acceptable_score == 4
    assert config.judge.model_name == "gpt-4o"


@pytest.mark.parametrize(("patch", "field"), [
    ({"name": "Bad_Name"}, "name"),
    ({"name": "ab"}, "name"),
    ({"sampling_rate": 0}, "sampling_rate"),
    ({"sampling_rate": 1.5}, "sampling_rate"),
    ({"window": "week"}, "window"),
    ({"judge": {"max_concurrency": 0}}, "judge.max_concurrency"),
    ({"judge": {"provider": "azure_openai"}}, "judge"),
    ({"judge": {"provider": "openai"}}, "judge"),
    ({"judge": {"provider": "anthropic"}}, "judge.provider"),
    ({"metrics": {"coherence": {"acceptable_score": 6}}}, "metrics.coherence.acceptable_score"),
    ({"metrics": {"coherence": {"pass_rate_threshold": -0.1}}}, "metrics.coherence.pass_rate_threshold"),
    ({"metrics": {"toxicity": {"enabled": True}}}, "metrics"),
    ({"metrics": {"politeness": {"prompt": "p.toml", "required": ["prompt", "tone"]}}},
     "metrics.politeness.required"),
    ({"alerts": {"min_samples": 0}}, "alerts.min_samples"),
    ({"alerts": {"emails": ["not-an-address"]}}, "alerts.emails"),
    ({"alerts": {"webhook_url": "ftp://x"}}, "alerts.webhook_url"),
    ({"source": {"prefix": "/abs"}}, "source.prefix"),
    ({"source": {"prefix": "p", "format": "csv"}}, "source.format"),
    ({"surprise": 1}, "surprise"),
])
def test_invalid_values_name_the_field(patch: dict[str, Any], field: str) -> None:
    assert field in _fields({**MINIMAL, **patch})


def test_missing_source_and_name_mismatch() -> None:
    assert "source" in _fields({"name": "abc"})
    assert _fields(MINIMAL, name="other-name") == ["name"]
    assert "(root)" in _fields(["not", "an", "object"])


def test_custom_metric_is_declared_with_prompt_and_columns() -> None:
    config = parse_config({**MINIMAL, "metrics": {
        "politeness": {"prompt": "examples/politeness", "required": ["prompt", "completion"], "acceptable_score": 4}}})
    assert config.enabled_metrics()["politeness"].required == ("prompt", "completion")
