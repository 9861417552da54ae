"""The smoke test's MDC hour is what the ingest path reads: MDC paths, envelopes, joinable halves,
written as appends with one line split across two of them (so a passing smoke proves tailing)."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.ingest.envelopes import parse_mdc_line
from monitor.ingest.lines import iter_lines
from monitor.ingest.paths import parse_mdc_path
from monitor.smoke import DEPLOYMENT, smoke_data


def _no_dataref(ref: str) -> list[object]:
    raise AssertionError(f"unexpected dataref {ref}")


def test_smoke_hour_is_valid_mdc_split_over_appends() -> None:
    now = datetime(2026, 11, 20, 14, 0, 3, tzinfo=UTC)
    data = smoke_data("smoke-0a1b2c3d", now, 6)
    assert data.hour == datetime(2026, 11, 20, 14, tzinfo=UTC)
    assert data.prefix == "modelDataCollector/smoke-0a1b2c3d/blue/"
    keys: dict[str, set[str]] = {}
    split_lines = 0
    for name, parts in data.appends.items():
        assert name.startswith(data.prefix)
        path = parse_mdc_path(name)
        assert path is not None and path.hour == data.hour and path.deployment == DEPLOYMENT
        assert len(parts) >= 2, "written as appends after an empty create"
        split_lines += sum(1 for part in parts[:-1] if not part.endswith(b"\n"))
        lines = list(iter_lines([b"".join(parts)], 1 << 20))
        assert len(lines) == 6
        for line in lines:
            halves, rejected = parse_mdc_line(line, path, "correlationid", _no_dataref)
            assert not rejected, rejected
            (half,) = halves
            assert half.time >= data.hour
            keys.setdefault(str(path.side), set()).add(half.key)
    assert split_lines == 1, "one line is split across two appends"
    assert keys["input"] == keys["output"] and len(keys["input"]) == data.records == 6
