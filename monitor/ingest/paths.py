"""What a blob path says: MDC endpoint, deployment, collection and rolling period.

MDC's `rolling_rate` decides the folder depth under a collection (see docs/ingestion.md):
Year `yyyy/`, Month `yyyy/MM/`, Day `yyyy/MM/dd/`, Hour `yyyy/MM/dd/HH/` (the default), Minute
`yyyy/MM/dd/HH/mm/`. The period a blob belongs to, and when that period ends, come from the depth.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Side = Literal["input", "output"]
Rate = Literal["year", "month", "day", "hour", "minute"]
RATES: tuple[Rate, ...] = ("year", "month", "day", "hour", "minute")
# Azure ML monitoring's copies of the append blobs live in `{collection}_block_blob` folders.
BLOCK_BLOB_SUFFIX = "_block_blob"

_MDC_PATH = re.compile(
    r"(?:^|/)modelDataCollector/(?P<endpoint>[^/]+)/(?P<deployment>[^/]+)/(?P<collection>[^/]+)/"
    r"(?P<y>\d{4})/(?:(?P<m>\d{2})/(?:(?P<d>\d{2})/(?:(?P<h>\d{2})/(?:(?P<mi>\d{2})/)?)?)?)?(?P<file>[^/]+)$"
)
_FOLDERS = re.compile(r"^(?P<y>\d{4})/(?:(?P<m>\d{2})/(?:(?P<d>\d{2})/(?:(?P<h>\d{2})/(?:(?P<mi>\d{2})/)?)?)?)?")
INPUT_COLLECTIONS = frozenset({"model_inputs", "request", "inputs"})
OUTPUT_COLLECTIONS = frozenset({"model_outputs", "response", "outputs"})


@dataclass(frozen=True)
class Period:
    """A rolling period: its rate and its first moment (UTC)."""

    rate: Rate
    start: datetime

    @property
    def end(self) -> datetime:
        return next_start(self.rate, self.start)

    def folder(self) -> str:
        """The date folders of this period, e.g. `2026/11/20/14/` for an hour."""
        return period_folder(self.rate, self.start)

    def previous(self) -> Period:
        return Period(self.rate, previous_start(self.rate, self.start))


@dataclass(frozen=True)
class MdcPath:
    endpoint: str
    deployment: str
    collection: str
    period: Period
    file: str

    @property
    def hour(self) -> datetime:
        """The first hour of the blob's period (kept for callers that think in hours)."""
        return self.period.start

    @property
    def side(self) -> Side | None:
        """Which half of a request this collection holds; None for other collections (app_traces)."""
        return side_of_collection(self.collection)

    @property
    def is_copy(self) -> bool:
        """Azure ML monitoring's block-blob copy of an append blob: never a new source."""
        return is_copy_collection(self.collection)


def parse_mdc_path(blob_path: str) -> MdcPath | None:
    """Parse `.../modelDataCollector/{ep}/{dep}/{collection}/{yyyy}[/MM[/dd[/HH[/mm]]]]/{file}`."""
    match = _MDC_PATH.search(blob_path)
    if match is None:
        return None
    period = _period(match)
    if period is None:
        return None
    return MdcPath(match["endpoint"], match["deployment"], match["collection"], period, match["file"])


def period_of_folders(relative: str) -> Period | None:
    """The period named by date folders at the start of `relative` (`2026/11/20/...`)."""
    match = _FOLDERS.match(relative)
    return _period(match) if match else None


def _period(match: re.Match[str]) -> Period | None:
    parts = [match["y"], match["m"], match["d"], match["h"], match["mi"]]
    depth = sum(1 for p in parts if p is not None)
    values = [int(p) if p is not None else default for p, default in zip(parts, (0, 1, 1, 0, 0), strict=True)]
    try:
        start = datetime(values[0], values[1], values[2], values[3], values[4], tzinfo=UTC)
    except ValueError:
        return None
    return Period(RATES[depth - 1], start)


def period_folder(rate: Rate, start: datetime) -> str:
    formats = {"year": "%Y/", "month": "%Y/%m/", "day": "%Y/%m/%d/", "hour": "%Y/%m/%d/%H/",
               "minute": "%Y/%m/%d/%H/%M/"}
    return start.strftime(formats[rate])


def period_at(rate: Rate, moment: datetime) -> Period:
    """The period of `rate` that holds `moment`."""
    m = moment.astimezone(UTC)
    starts = {"year": datetime(m.year, 1, 1, tzinfo=UTC), "month": datetime(m.year, m.month, 1, tzinfo=UTC),
              "day": datetime(m.year, m.month, m.day, tzinfo=UTC),
              "hour": datetime(m.year, m.month, m.day, m.hour, tzinfo=UTC),
              "minute": datetime(m.year, m.month, m.day, m.hour, m.minute, tzinfo=UTC)}
    return Period(rate, starts[rate])


def next_start(rate: Rate, start: datetime) -> datetime:
    if rate == "year":
        return start.replace(year=start.year + 1)
    if rate == "month":
        return start + timedelta(days=calendar.monthrange(start.year, start.month)[1])
    return start + {"day": timedelta(days=1), "hour": timedelta(hours=1), "minute": timedelta(minutes=1)}[rate]


def previous_start(rate: Rate, start: datetime) -> datetime:
    if rate == "year":
        return start.replace(year=start.year - 1)
    if rate == "month":
        before = start - timedelta(days=1)
        return before.replace(day=1)
    return start - {"day": timedelta(days=1), "hour": timedelta(hours=1), "minute": timedelta(minutes=1)}[rate]


def is_copy_collection(collection: str) -> bool:
    return collection.endswith(BLOCK_BLOB_SUFFIX)


def side_of_type(event_type: str) -> Side | None:
    """The side named by an envelope `type` such as `azureml.inference.model_inputs`."""
    return side_of_collection(event_type.rsplit(".", 1)[-1])


def side_of_collection(collection: str) -> Side | None:
    if collection in INPUT_COLLECTIONS:
        return "input"
    if collection in OUTPUT_COLLECTIONS:
        return "output"
    return None
