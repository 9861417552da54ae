"""Storage clients built from a :class:`~monitor.settings.Connection`.

A connection string (Azurite locally, or an account in a test subscription) or the identity-based
setting group the Functions host uses in Azure (`NAME__blobServiceUri`, `__credential`,
`__clientId`). Clients are cached per connection: one per process, reused by every invocation.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Literal

import requests
import requests.adapters
from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import (
    BinaryBase64DecodePolicy,
    BinaryBase64EncodePolicy,
    QueueClient,
    QueueServiceClient,
)

from monitor.settings import Connection


def token_credential(conn: Connection) -> Any:
    """The Entra ID credential for an identity-based connection."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if conn.credential == "managedidentity":
        return ManagedIdentityCredential(client_id=conn.client_id) if conn.client_id else ManagedIdentityCredential()
    return DefaultAzureCredential(managed_identity_client_id=conn.client_id)


def _require(conn: Connection, uri: str | None, service: Literal["blob", "queue", "table"]) -> str:
    return uri or conn.endpoint(service)


# Storage calls run on a pool of threads; one HTTP session with a pool to match serves every client.
POOL_CONNECTIONS = 32


@functools.lru_cache(maxsize=1)
def _transport_session() -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=POOL_CONNECTIONS, pool_maxsize=POOL_CONNECTIONS)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def transport() -> RequestsTransport:
    """A transport over the shared session (the client does not own, so never closes, it)."""
    return RequestsTransport(session=_transport_session(), session_owner=False)


# Downloads are streamed in pieces of this size, so reading a blob of any size takes bounded memory.
DOWNLOAD_CHUNK = 4 * 1024 * 1024


@functools.lru_cache(maxsize=8)
def blob_service(conn: Connection) -> BlobServiceClient:
    if conn.connection_string:
        return BlobServiceClient.from_connection_string(
            conn.connection_string, max_single_get_size=DOWNLOAD_CHUNK, max_chunk_get_size=DOWNLOAD_CHUNK,
            transport=transport())
    return BlobServiceClient(_require(conn, conn.blob_uri, "blob"), credential=token_credential(conn),
                             max_single_get_size=DOWNLOAD_CHUNK, max_chunk_get_size=DOWNLOAD_CHUNK,
                             transport=transport())


@functools.lru_cache(maxsize=8)
def queue_service(conn: Connection) -> QueueServiceClient:
    if conn.connection_string:
        return QueueServiceClient.from_connection_string(conn.connection_string)
    return QueueServiceClient(_require(conn, conn.queue_uri, "queue"), credential=token_credential(conn))


@functools.lru_cache(maxsize=8)
def table_service(conn: Connection) -> TableServiceClient:
    if conn.connection_string:
        return TableServiceClient.from_connection_string(conn.connection_string, transport=transport())
    return TableServiceClient(endpoint=_require(conn, conn.table_uri, "table"), credential=token_credential(conn),
                              transport=transport())


def queue_client(conn: Connection, name: str) -> QueueClient:
    """A client of one queue (created if missing) that writes and reads base64 messages, the
    encoding the Functions queue trigger expects by default."""
    encode, decode = BinaryBase64EncodePolicy(), BinaryBase64DecodePolicy()
    if conn.connection_string:
        client = QueueClient.from_connection_string(conn.connection_string, name, message_encode_policy=encode,
                                                    message_decode_policy=decode)
    else:
        client = QueueClient(_require(conn, conn.queue_uri, "queue"), name, credential=token_credential(conn),
                             message_encode_policy=encode, message_decode_policy=decode)
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    return client


def reset_clients() -> None:
    """Drop cached clients (tests point the settings at a new emulator)."""
    for cached in (blob_service, queue_service, table_service):
        cached.cache_clear()
