"""The monitor configuration (CONTRACTS.md section 2): a validated pydantic model.

Every field but ``name`` and ``source`` has a default. Unknown metric names, unknown fields and
out-of-range values are rejected with errors that name the field.
"""

from __future__ import annotations

import difflib
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from monitor.errors import ConfigError

BUILTIN_METRICS: tuple[str, ...] = ("coherence", "fluency", "groundedness", "relevance", "similarity")
COLUMNS: tuple[str, ...] = ("prompt", "completion", "context", "ground_truth")
NAME_PATTERN = re.compile(r"^[a-z0-9-]{3,63}$")
# Size limits per field (docs/api.md "Limits"): a stored config must fit one Table Storage string
# property (64 KiB of UTF-16, i.e. 32,768 characters); these caps keep the largest valid config under
# MAX_CONFIG_CHARS, so a config is refused up front with the field named, never by storage.
MAX_PREFIX_CHARS = 1024          # a blob name has at most 1,024 characters
MAX_COLUMN_CHARS = 128
MAX_URL_CHARS = 2048
MAX_NAME_CHARS = 256             # deployments, models, API versions
MAX_SETTING_CHARS = 128
MAX_METRICS = 40
MAX_PROMPT_REFERENCE_CHARS = 200
MAX_EMAILS = 20
MAX_EMAIL_CHARS = 254
MAX_CONFIG_CHARS = 30_000
METRIC_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    format: Literal["mdc", "jsonl"] = "mdc"
    container: str = Field(default="azureml", min_length=3, max_length=63)
    prefix: str = Field(min_length=1, max_length=MAX_PREFIX_CHARS)
    join_column: str = Field(default="correlationid", min_length=1, max_length=MAX_COLUMN_CHARS)
    # A join half waits this long for its partner before it counts as unmatched.
    join_ttl_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)

    @field_validator("prefix")
    @classmethod
    def _prefix_is_relative(cls, value: str) -> str:
        if value.startswith("/"):
            raise ValueError("prefix is a blob path inside the container; it must not start with '/'")
        return value


_Column = Annotated[str, Field(min_length=1, max_length=MAX_COLUMN_CHARS)]
_Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_CHARS)]
_Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]


class ColumnsConfig(_Strict):
    prompt: _Column | None = "question"
    completion: _Column | None = "answer"
    context: _Column | None = "context"
    ground_truth: _Column | None = "ground_truth"
    chat_history: _Column | None = "chat_history"


class JudgeConfig(_Strict):
    provider: Literal["azure_openai", "openai", "heuristic"] = "heuristic"
    endpoint: _Url | None = None
    deployment: _Name | None = None
    api_version: _Name = "2024-10-21"
    model: _Name | None = None
    base_url: _Url | None = None
    # Only settings meant for judge keys may be named (docs/security.md; checked when stored and used).
    api_key_setting: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                        max_length=MAX_SETTING_CHARS)
    # Calls in flight per instance: adaptive (from 16, growing while latency holds, up to
    # max_concurrency), or fixed at max_concurrency when adaptive_concurrency is false.
    max_concurrency: int = Field(default=64, ge=1, le=256)
    adaptive_concurrency: bool = True
    # The whole deployment's budget, shared by every instance and every monitor of the same quota
    # pool: by default the endpoint + deployment (or base_url + model); quota_pool names another
    # pool explicitly (docs/quotas.md).
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    quota_pool: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:/-]{1,100}$")
    daily_token_budget: int | None = Field(default=None, ge=1)
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    max_attempts: int = Field(default=6, ge=1, le=20)
    # "failing": ask for a reason only where the score is below the acceptable score.
    explain: Literal["off", "failing", "all"] = "failing"
    use_logprobs: bool = True

    @model_validator(mode="after")
    def _provider_fields(self) -> JudgeConfig:
        if self.provider == "azure_openai":
            missing = [f for f in ("endpoint", "deployment") if not getattr(self, f)]
            if missing:
                raise ValueError(f"provider azure_openai needs {' and '.join(missing)}")
        if self.provider == "openai" and not self.model:
            raise ValueError("provider openai needs model")
        return self

    @property
    def model_name(self) -> str:
        """The name recorded with each score: deployment, model, or 'heuristic'."""
        if self.provider == "azure_openai":
            return str(self.deployment)
        if self.provider == "openai":
            return str(self.model)
        return "heuristic"


class MetricConfig(_Strict):
    enabled: bool = True
    acceptable_score: float = Field(default=3, ge=1, le=5)
    pass_rate_threshold: float = Field(default=0.7, ge=0, le=1)
    # Custom metrics only: the prompt's name in the prompts folder (docs/security.md) and its columns.
    prompt: str | None = Field(default=None, min_length=1, max_length=MAX_PROMPT_REFERENCE_CHARS)
    required: tuple[str, ...] | None = Field(default=None, max_length=len(COLUMNS))

    @field_validator("required")
    @classmethod
    def _known_columns(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            unknown = [c for c in value if c not in COLUMNS]
            if unknown:
                raise ValueError(f"unknown column(s) {unknown}; columns are {list(COLUMNS)}")
        return value


class AlertsConfig(_Strict):
    min_samples: int = Field(default=10, ge=1)
    emails: tuple[Annotated[str, Field(max_length=MAX_EMAIL_CHARS)], ...] = Field(default=(), max_length=MAX_EMAILS)
    webhook_url: _Url | None = None
    error_rate_limit: float = Field(default=0.2, ge=0, le=1)

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [e for e in value if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", e)]
        if bad:
            raise ValueError(f"not an e-mail address: {bad}")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://", value):
            raise ValueError("webhook_url must be an http(s) URL")
        return value


class BaselineConfig(_Strict):
    """A fixed reference period for drift: windows starting in [start, end)."""

    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> BaselineConfig:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a time zone, e.g. 2026-11-01T00:00:00Z")
        if self.end <= self.start:
            raise ValueError("end must be later than start")
        return self


class DriftConfig(_Strict):
    """Score and traffic drift against a baseline (docs/drift.md explains the defaults)."""

    enabled: bool = True
    # Jensen-Shannon distance (0-1) at or above which a window has drifted.
    threshold: float = Field(default=0.2, gt=0, le=1)
    # Records needed in the window and in the baseline before drift is judged.
    min_samples: int = Field(default=100, ge=1)
    # Trailing complete windows forming the baseline; default 7 day-windows or 24 hour-windows.
    trailing_windows: int | None = Field(default=None, ge=1, le=24 * 31)
    baseline: BaselineConfig | None = None
    # Alert on traffic-shape drift too (prompt/completion length, empty or refused answers).
    traffic: bool = True

    def trailing(self, window: Literal["hour", "day"]) -> int:
        if self.trailing_windows is not None:
            return self.trailing_windows
        return 24 if window == "hour" else 7


class CalibrationConfig(_Strict):
    """Judge calibration against the golden set (docs/calibration.md)."""

    # A metric's Spearman correlation with the human scores below this raises `judge_drift`.
    min_spearman: float = Field(default=0.5, ge=-1, le=1)
    # A metric's mean bias (judge minus human) moving by more than this from the previous run too.
    max_bias_shift: float = Field(default=0.5, gt=0, le=4)
    # Golden records a metric needs before its agreement can raise an alert.
    min_records: int = Field(default=10, ge=2)


class MonitorConfig(_Strict):
    name: str
    source: SourceConfig
    columns: ColumnsConfig = ColumnsConfig()
    sampling_rate: float = Field(default=1.0, gt=0, le=1)
    window: Literal["hour", "day"] = "hour"
    judge: JudgeConfig = JudgeConfig()
    metrics: dict[str, MetricConfig] = Field(default_factory=dict, max_length=MAX_METRICS)
    alerts: AlertsConfig = AlertsConfig()
    drift: DriftConfig = DriftConfig()
    calibration: CalibrationConfig = CalibrationConfig()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError("name must be 3-63 characters of lowercase letters, digits and '-'")
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: dict[str, MetricConfig]) -> dict[str, MetricConfig]:
        for name, metric in value.items():
            if name in BUILTIN_METRICS:
                if metric.prompt is not None or metric.required is not None:
                    raise ValueError(f"{name}: prompt and required are only for custom metrics")
                continue
            if not METRIC_NAME_PATTERN.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid metric name")
            if metric.prompt is None or metric.required is None:
                raise ValueError(
                    f"unknown metric {name!r}: built-in metrics are {list(BUILTIN_METRICS)}; "
                    "a custom metric must name its prompt file and required columns"
                )
        return value

    def metric_settings(self) -> dict[str, MetricConfig]:
        """Every metric with its effective settings: built-ins default to enabled."""
        merged = {name: self.metrics.get(name, MetricConfig()) for name in BUILTIN_METRICS}
        merged.update({n: m for n, m in self.metrics.items() if n not in BUILTIN_METRICS})
        return merged

    def enabled_metrics(self) -> dict[str, MetricConfig]:
        return {n: m for n, m in self.metric_settings().items() if m.enabled}

    def owns(self, container: str, blob_path: str) -> bool:
        """Whether a blob (path inside `container`) belongs to this monitor."""
        return container == self.source.container and blob_path.startswith(self.source.prefix)


def field_errors(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as `[{"field": "judge.max_concurrency", "message": ...}]`, worded for people:
    no "Value error," prefix, and an unknown field names the closest known one."""
    out = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"])
        out.append({"field": loc or "(root)", "message": _message(item)})
    return out


_PREFIXES = ("Value error, ", "Assertion failed, ")


def _message(item: Any) -> str:
    if item["type"] == "extra_forbidden":
        *parent, field = item["loc"]
        known = _fields_at(tuple(parent))
        close = difflib.get_close_matches(str(field), known, n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`?" if close else f"known fields here: {', '.join(known)}"
        return f"unknown field; {hint}"
    message = str(item["msg"])
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    return message


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model at `loc` inside a MonitorConfig (metric names skipped)."""
    model: type[BaseModel] = MonitorConfig
    index = 0
    while index < len(loc):
        info = model.model_fields.get(str(loc[index]))
        annotation = info.annotation if info else None
        if annotation == dict[str, MetricConfig]:
            model, index = MetricConfig, index + 2
            continue
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model, index = annotation, index + 1
    return list(model.model_fields)


def parse_config(data: Any, *, name: str | None = None) -> MonitorConfig:
    """Validate raw JSON data into a config; raise ConfigError naming every bad field."""
    if not isinstance(data, dict):
        raise ConfigError("a monitor configuration must be a JSON object",
                          details=[{"field": "(root)", "message": "expected an object"}])
    if name is not None:
        if "name" in data and data["name"] != name:
            raise ConfigError(
                f"the name in the body ({data['name']!r}) differs from the name in the path ({name!r})",
                details=[{"field": "name", "message": "must equal the name in the path"}],
            )
        data = {**data, "name": name}
    try:
        config = MonitorConfig.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise ConfigError(f"invalid monitor configuration: {summary}", details=errors) from exc
    size = len(config.model_dump_json())
    if size > MAX_CONFIG_CHARS:
        raise ConfigError(f"the configuration is {size} characters once stored; at most {MAX_CONFIG_CHARS}",
                          details=[{"field": "(root)", "message": f"at most {MAX_CONFIG_CHARS} characters"}])
    return config
