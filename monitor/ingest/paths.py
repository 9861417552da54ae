"""What a blob path says: MDC endpoint, deployment, collection and hour."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Side = Literal["input", "output"]

_MDC_PATH = re.compile(
    r"(?:^|/)modelDataCollector/(?P<endpoint>[^/]+)/(?P<deployment>[^/]+)/(?P<collection>[^/]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/(?P<file>[^/]+)$"
)
INPUT_COLLECTIONS = frozenset({"model_inputs", "request", "inputs"})
OUTPUT_COLLECTIONS = frozenset({"model_outputs", "response", "outputs"})


@dataclass(frozen=True)
class MdcPath:
    endpoint: str
    deployment: str
    collection: str
    hour: datetime
    file: str

    @property
    def side(self) -> Side | None:
        """Which half of a request this collection holds; None for other collections (app_traces)."""
        return side_of_collection(self.collection)


def parse_mdc_path(blob_path: str) -> MdcPath | None:
    """Parse `.../modelDataCollector/{ep}/{dep}/{collection}/{yyyy}/{MM}/{dd}/{HH}/{file}`; None if not."""
    match = _MDC_PATH.search(blob_path)
    if match is None:
        return None
    try:
        hour = datetime(int(match["y"]), int(match["m"]), int(match["d"]), int(match["h"]), tzinfo=UTC)
    except ValueError:
        return None
    return MdcPath(match["endpoint"], match["deployment"], match["collection"], hour, match["file"])


def side_of_type(event_type: str) -> Side | None:
    """The side named by an envelope `type` such as `azureml.inference.model_inputs`."""
    return side_of_collection(event_type.rsplit(".", 1)[-1])


def side_of_collection(collection: str) -> Side | None:
    if collection in INPUT_COLLECTIONS:
        return "input"
    if collection in OUTPUT_COLLECTIONS:
        return "output"
    return None
