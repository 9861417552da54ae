"""Alerts to Application Insights: a custom event `QualityAlert` and a counter `quality_alerts`.

With APPLICATIONINSIGHTS_CONNECTION_STRING set, azure-monitor-opentelemetry is configured once per
process, lazily (never at import), exporting the logger `monitor.events`. A log record carrying the
attribute `microsoft.custom_event.name` is exported as a custom event (customEvents table) whose
customDimensions are the record's other attributes. Without the setting the same record simply goes
through `logging` (the Functions host still collects it as a trace).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from monitor.settings import get_settings

EVENT_NAME = "QualityAlert"
EVENT_LOGGER = "monitor.events"
METRIC_NAME = "quality_alerts"
CUSTOM_EVENT_ATTRIBUTE = "microsoft.custom_event.name"
DIMENSIONS = ("monitor", "metric", "segment", "kind", "window_start", "value", "threshold")

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_state: dict[str, Any] = {}


def _configure() -> Any:
    """Configure Azure Monitor (first call only); returns the alert counter, or None when disabled."""
    with _lock:
        if "counter" in _state:
            return _state["counter"]
        connection = get_settings().APPLICATIONINSIGHTS_CONNECTION_STRING
        counter = None
        if connection:
            from azure.monitor.opentelemetry import configure_azure_monitor
            from opentelemetry import metrics

            try:
                configure_azure_monitor(connection_string=connection, logger_name=EVENT_LOGGER,
                                        enable_live_metrics=False, **_credential())
            except Exception:  # telemetry must never break aggregation; alerts are still logged
                logger.exception("Application Insights could not be configured; alerts are only logged")
            else:
                logging.getLogger(EVENT_LOGGER).setLevel(logging.INFO)
                meter = metrics.get_meter("monitor.aggregate")
                counter = meter.create_counter(METRIC_NAME, unit="1", description="Quality alerts raised")
        _state["counter"] = counter
        return counter


def dimensions(alert: Mapping[str, Any]) -> dict[str, Any]:
    return {k: alert.get(k) for k in DIMENSIONS}


def emit_alert(alert: Mapping[str, Any]) -> None:
    """Emit one new alert: event + counter when Application Insights is configured, a log line always.
    Never raises: the alert is already stored, and telemetry trouble must not stop the run."""
    try:
        _emit(alert)
    except Exception:
        logger.exception("could not emit alert %s to telemetry", alert.get("RowKey"))


def _emit(alert: Mapping[str, Any]) -> None:
    counter = _configure()
    dims = dimensions(alert)
    level = logging.INFO if alert.get("kind") == "recovered" else logging.WARNING
    logging.getLogger(EVENT_LOGGER).log(level, "%s", alert.get("message", EVENT_NAME),
                                        extra={CUSTOM_EVENT_ATTRIBUTE: EVENT_NAME, **dims})
    if counter is not None:
        counter.add(1, attributes={k: str(dims[k]) for k in ("monitor", "metric", "segment", "kind")})


def flush() -> None:
    """Push buffered telemetry out (the CLI calls it before exiting; tests use it)."""
    if not _state.get("counter"):
        return
    from opentelemetry import metrics
    from opentelemetry._logs import get_logger_provider

    for provider in (get_logger_provider(), metrics.get_meter_provider()):
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is not None:
            force_flush()


def reset_telemetry() -> None:
    """Forget the configuration decision (tests change the environment)."""
    with _lock:
        _state.clear()


def _credential() -> dict[str, Any]:
    """Entra ID for ingestion when App Insights has local auth disabled (as infra/ deploys it):
    the user-assigned identity named by AZURE_CLIENT_ID, when the app runs with one."""
    client_id = get_settings().AZURE_CLIENT_ID
    if not client_id:
        return {}
    from azure.identity import ManagedIdentityCredential

    return {"credential": ManagedIdentityCredential(client_id=client_id)}
