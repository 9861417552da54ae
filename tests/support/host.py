"""Invoke the function app's functions the way the Functions host does, without the host.

The app object is imported once per test session and its functions indexed once (a second
`get_functions()` call raises). Triggers get the SDK objects the worker would build: the blob
trigger an SDK-type `BlobClient` decoded from model binding data by the blob extension's own
converter, the queue trigger a `QueueMessage`, the timer a `TimerRequest`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import azure.functions as func


@functools.lru_cache(maxsize=1)
def functions() -> dict[str, Any]:
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def user_function(name: str) -> Any:
    return functions()[name].get_user_function()


def bindings(name: str) -> list[dict[str, Any]]:
    return list(json.loads(functions()[name].get_function_json())["bindings"])


@dataclass(frozen=True)
class ModelBindingData:
    """What the host sends for an SDK-type binding (the worker's protobuf message has these fields)."""

    content: str
    version: str = "1.0"
    source: str = "AzureStorageBlobs"
    content_type: str = "application/json"


def blob_trigger_client(container: str, name: str, connection: str = "MDC_STORAGE") -> Any:
    """The `blob.BlobClient` argument the worker builds for the blob trigger."""
    from azurefunctions.extensions.base import Datum
    from azurefunctions.extensions.bindings.blob import BlobClient
    from azurefunctions.extensions.bindings.blob.blobClientConverter import BlobClientConverter

    content = json.dumps({"Connection": connection, "ContainerName": container, "BlobName": name})
    datum = Datum(value=ModelBindingData(content=content), type="model_binding_data")
    return BlobClientConverter.decode(datum, trigger_metadata={}, pytype=BlobClient)


def fire_blob(container: str, name: str) -> Any:
    return user_function("ingest_blob")(blob_trigger_client(container, name))


def queue_message(body: bytes, dequeue_count: int = 1) -> func.QueueMessage:
    """The `QueueMessage` the worker decodes for the queue trigger (the concrete SDK class)."""
    from azure.functions.queue import QueueMessage

    return QueueMessage(id="m", body=body, dequeue_count=dequeue_count)

