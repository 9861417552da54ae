"""Metrics are declarations: the built-in table, custom metrics from the configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import BUILTIN_METRICS, MetricConfig, MonitorConfig
from monitor.errors import ConfigError
from monitor.judge import BUILTIN, JudgeEngine, JudgeTask, PromptError, enabled_metrics
from monitor.judge.metrics import declare

# PRODUCT.md: the columns each metric requires.
PRODUCT_TABLE = {
    "coherence": {"prompt", "completion"},
    "fluency": {"prompt", "completion"},
    "groundedness": {"prompt", "completion", "context"},
    "relevance": {"prompt", "completion", "context"},
    "similarity": {"prompt", "completion", "ground_truth"},
}


def test_builtin_table_matches_the_product_table() -> None:
    assert set(BUILTIN) == set(BUILTIN_METRICS) == set(PRODUCT_TABLE)
    for name, required in BUILTIN.items():
        assert set(required) == PRODUCT_TABLE[name]


def monitor(metrics: dict[str, object]) -> MonitorConfig:
    return MonitorConfig.model_validate({"name": "mets", "source": {"prefix": "p/"}, "metrics": metrics})


def test_enabled_metrics_use_the_configured_thresholds() -> None:
    metrics = enabled_metrics(monitor({"fluency": {"enabled": False}, "coherence": {"acceptable_score": 4}}))
    assert "fluency" not in metrics
    assert metrics["coherence"].acceptable_score == 4
    assert metrics["coherence"].passed(4.0) and not metrics["coherence"].passed(3.99)


def test_the_shipped_example_custom_metric_declares_itself() -> None:
    metrics = enabled_metrics(monitor({"politeness": {"prompt": "examples/politeness", "required": ["completion"]}}))
    politeness = metrics["politeness"]
    assert not politeness.builtin and politeness.required == ("completion",)
    assert politeness.prompt.name == "politeness" and politeness.prompt.inputs == ("completion",)


def test_a_custom_prompt_must_use_record_columns(prompt_dir: Path) -> None:
    path = prompt_dir / "tone.prompt.toml"
    path.write_text("""
name = "tone"
version = "1"
inputs = ["mood"]
[template]
system = "Rate."
user = "<x>{{mood}}</x>"
[modes.score]
instruction = "Digit."
[modes.explain]
instruction = "JSON."
""", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be record columns"):
        declare("tone", MetricConfig(prompt="tone", required=("completion",)))


def test_a_missing_custom_prompt_fails_the_engine_at_construction() -> None:
    with pytest.raises(PromptError, match="not found"):
        JudgeEngine(monitor({"tone": {"prompt": "examples/does_not_exist", "required": ["completion"]}}))


def test_asking_for_a_metric_that_is_not_enabled_is_a_config_error() -> None:
    engine = JudgeEngine(monitor({"fluency": {"enabled": False}}))
    from datetime import UTC, datetime

    from monitor.records import Record
    rec = Record(monitor="mets", key="k", time=datetime.now(UTC), prompt="q", completion="a")
    with pytest.raises(ConfigError, match="not enabled"):
        engine.judge([JudgeTask(rec, "fluency")])
