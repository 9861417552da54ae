"""Metrics are declarations: a name, the record columns they need, and a prompt file.

Built-in metrics are one table (the PRODUCT.md table of required columns); a custom metric comes from
the monitor configuration (`MetricConfig.prompt` + `MetricConfig.required`). Rendering, calling,
parsing and thresholds live in the engine, once, for every metric (STYLE.md 6).
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.config import MetricConfig, MonitorConfig
from monitor.errors import ConfigError
from monitor.judge.prompts import Prompt, load_prompt
from monitor.records import TEXT_FIELDS, Record

# name -> required columns. The prompt of a built-in metric is prompts/<name>.prompt.toml.
BUILTIN: dict[str, tuple[str, ...]] = {
    "coherence": ("prompt", "completion"),
    "fluency": ("prompt", "completion"),
    "groundedness": ("prompt", "completion", "context"),
    "relevance": ("prompt", "completion", "context"),
    "similarity": ("prompt", "completion", "ground_truth"),
}


@dataclass(frozen=True)
class Metric:
    name: str
    required: tuple[str, ...]
    prompt: Prompt
    acceptable_score: float
    builtin: bool

    def applicable(self, record: Record) -> bool:
        """A record lacking any required column is not applicable: never judged, never failed."""
        return all(record.column(column) is not None for column in self.required)

    def values(self, record: Record) -> dict[str, str | None]:
        """The prompt's input values taken from the record (optional inputs may be None)."""
        return {name: record.column(name) for name in self.prompt.inputs}

    def passed(self, score: float) -> bool:
        return score >= self.acceptable_score


def declare(name: str, settings: MetricConfig) -> Metric:
    """The metric `name` with its configured settings; loads and checks its prompt file."""
    if name in BUILTIN:
        return Metric(name, BUILTIN[name], load_prompt(name), settings.acceptable_score, True)
    if settings.prompt is None or settings.required is None:
        raise ConfigError(f"custom metric {name!r} needs both 'prompt' and 'required'")
    prompt = load_prompt(settings.prompt)
    unknown = [i for i in prompt.inputs if i not in TEXT_FIELDS]
    if unknown:
        raise ConfigError(
            f"custom metric {name!r}: prompt {prompt.path} uses input(s) {unknown}; "
            f"inputs must be record columns {list(TEXT_FIELDS)}"
        )
    return Metric(name, tuple(settings.required), prompt, settings.acceptable_score, False)


def enabled_metrics(config: MonitorConfig) -> dict[str, Metric]:
    """Every enabled metric of a monitor, declared and checked (prompt files loaded)."""
    return {name: declare(name, settings) for name, settings in config.enabled_metrics().items()}
