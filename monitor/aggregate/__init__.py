"""Windows, pass rates and alerts: the timer path (see docs/alerts.md and docs/architecture.md).

Public API:
* :func:`run_aggregation` - what the timer trigger runs (all monitors, or one);
* :func:`aggregate_command` - `python -m monitor aggregate --monitor NAME [--at ISO]`;
* :func:`last_aggregation` - for `status`;
* :func:`query_windows` / :func:`query_alerts` - the read side for the HTTP API.
"""

from monitor.aggregate.queries import query_alerts, query_windows
from monitor.aggregate.runner import AggregationReport, aggregate_command, last_aggregation, run_aggregation

__all__ = [
    "AggregationReport",
    "aggregate_command",
    "last_aggregation",
    "query_alerts",
    "query_windows",
    "run_aggregation",
]
