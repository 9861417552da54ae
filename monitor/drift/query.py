"""The read side of drift: `GET /api/monitors/{name}/drift` and `python -m monitor drift`.

Drift rows come from the `drift` table (one PartitionKey range query, RowKeys bounded by the time
range), traffic-shape windows from `shapewindows` (one partition query); nothing scans scores.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from monitor.aggregate.store import windows_between
from monitor.drift.series import SERIES_BUCKETS, TRAFFIC_SERIES, shape_windows
from monitor.drift.service import baseline_of
from monitor.results import ParameterError, check_range, check_segment, load_config, normalize_times
from monitor.storage.tables import Tables

_DROP = ("PartitionKey", "RowKey", "monitor", "computed_at", "Timestamp")


def drift_report(name: str, *, series: str | None = None, segment: str | None = None,
                 start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    """`{"monitor", "window", "enabled", "threshold", "min_samples", "baseline", "points", "traffic"}`."""
    config = load_config(name)
    check_segment(segment)
    check_range(start, end)
    known = [*config.enabled_metrics(), *TRAFFIC_SERIES]
    if series is not None and series not in known:
        raise ParameterError("metric", f"unknown series {series!r}; this monitor has {known}")
    tables = Tables.default()
    points = [_public(e) for e in windows_between(tables, name, series, start, end, table="drift")
              if segment is None or e.get("segment") == segment]
    points.sort(key=lambda p: (str(p["window_start"]), str(p["series"]), str(p["segment"])))
    traffic = [public_shape(e) for e in shape_windows(tables, name, start, end)
               if segment is None or e.get("segment") == segment]
    drift = config.drift
    return {"monitor": name, "window": config.window, "enabled": drift.enabled, "threshold": drift.threshold,
            "min_samples": drift.min_samples, "traffic_alerts": drift.traffic,
            "baseline": baseline_of(config).describe(), "points": points, "traffic": traffic}


def _public(entity: dict[str, Any]) -> dict[str, Any]:
    out = normalize_times({k: v for k, v in entity.items() if k not in _DROP})
    for key in ("js_distance", "psi", "mean", "baseline_mean", "mean_shift", "mean_shift_stderr"):
        out.setdefault(key, None)
    return out


def public_shape(entity: dict[str, Any]) -> dict[str, Any]:
    """A traffic-shape row with its histograms as {bucket label: count}."""
    out = normalize_times({k: v for k, v in entity.items() if k not in _DROP})
    for series in TRAFFIC_SERIES:
        field = series.split(".", 1)[1]
        counts = json.loads(str(entity.get(field) or "[]"))
        out[field] = dict(zip(SERIES_BUCKETS[series], (int(c) for c in counts), strict=False))
    return out
