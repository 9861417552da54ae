"""Model Data Collector files for tests: the shared reference hour, and generated envelopes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from azure.storage.blob import ContainerClient

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "mdc"
PREFIX = "modelDataCollector/contoso-chat/blue/"
INPUTS = PREFIX + "model_inputs/2026/11/20/14/4fda2efaa7364394a89c37989af9db93000000.jsonl"
OUTPUTS = PREFIX + "model_outputs/2026/11/20/14/4fda2efaa7364394a89c37989af9db93000000.jsonl"
DATAREF = PREFIX + "model_outputs/2026/11/20/14/dataref-7415b7a9-0003.json"


def reference_root() -> Path:
    """The shared reference files; a copy ships under tests/data for clones without ../shared."""
    local = Path(__file__).resolve().parents[1] / "data" / "mdc"
    return local if local.exists() else REFERENCE


def upload_reference(container: ContainerClient, names: Iterable[str] = (INPUTS, OUTPUTS, DATAREF)) -> None:
    root = reference_root()
    for name in names:
        container.upload_blob(name, (root / name).read_bytes(), overwrite=True)


def monitor_config(name: str, container: str, *, prefix: str = PREFIX, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": name,
        "source": {"format": "mdc", "container": container, "prefix": prefix},
        "columns": {"prompt": "question", "completion": "answer", "context": "context"},
        "judge": {"provider": "heuristic"},
    }
    config.update(overrides)
    return config


def envelope(collection: str, correlation: str, time: datetime, rows: list[dict[str, Any]] | None,
             *, deployment: str = "blue", endpoint: str = "contoso-chat", **extra: Any) -> dict[str, Any]:
    source = (f"/subscriptions/0/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
              f"/onlineEndpoints/{endpoint}/deployments/{deployment}")
    env: dict[str, Any] = {
        "specversion": "1.0", "id": f"id-{correlation}-{collection}", "source": source,
        "type": f"azureml.inference.{collection}", "datacontenttype": "application/json",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"), "contentrange": "bytes 0-1/2",
        "correlationid": correlation, "xrequestid": correlation, "modelversion": "default",
        "collectdatatype": "pandas.core.frame.DataFrame", "agent": "azureml-ai-monitoring/0.1.0b4",
    }
    if rows is not None:
        env["data"] = rows
    env.update(extra)
    return env


def jsonl(items: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(i).encode() + b"\n" for i in items)


def hour_path(collection: str, time: datetime, file: str = "0" * 32 + "000000.jsonl", *,
              endpoint: str = "contoso-chat", deployment: str = "blue") -> str:
    return f"modelDataCollector/{endpoint}/{deployment}/{collection}/{time:%Y/%m/%d/%H}/{file}"
