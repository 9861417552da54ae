"""Entity-group transactions of creates, written and read without the SDK's multipart machinery.

The claim transactions (50 records each) are the hot path of a tail pass at high sampling rates.
The table SDK builds a transaction through `email`'s MIME generator and parses the answer with its
feed parser: about half the client CPU of a claim (docs/ingestion.md, "Cost"). Here the
OData batch body is written as text and the answer's status lines are read with a regular
expression; the request still goes through the client's own pipeline (authentication, retries,
transport). Entities with property types other than text, booleans and 32-bit integers, or a
client without the pipeline hook, go through the SDK's `submit_transaction` instead.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.data.tables import TableClient

_STATUS = re.compile(rb"^HTTP/1\.1 (\d{3})", re.MULTILINE)
_CODE = re.compile(rb'"code"\s*:\s*"([^"]+)"')
_INT32 = 2**31
T = TypeVar("T")


class TransactionError(HttpResponseError):
    """A transaction the service refused as a whole; `error_code` as the service named it."""

    def __init__(self, message: str, error_code: str | None) -> None:
        super().__init__(message=message)
        self.error_code = error_code


def create_all(table: TableClient, entities: Sequence[Mapping[str, Any]]) -> None:
    """Create the entities (one partition, at most 100) in one transaction: all or none. Raises
    TransactionError (or the SDK's TableTransactionError) naming why when any create is refused."""
    send = getattr(getattr(table, "_client", None), "send_request", None)
    if send is None or not all(_plain(e) for e in entities):
        table.submit_transaction([("create", dict(e)) for e in entities])
        return
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    target = f"{table.url.split('?', 1)[0].rstrip('/')}/{table.table_name}"
    parts = []
    for index, entity in enumerate(entities):
        body = json.dumps(entity, separators=(",", ":"))  # ASCII (escaped): length == bytes
        parts.append(
            f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: {index}\r\n\r\nPOST {target} HTTP/1.1\r\nContent-Type: application/json\r\n"
            f"Accept: application/json;odata=minimalmetadata\r\nPrefer: return-no-content\r\n"
            f"DataServiceVersion: 3.0\r\nContent-Length: {len(body)}\r\n\r\n{body}\r\n")
    text = (f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n" + "".join(parts)
            + f"--{changeset}--\r\n\r\n--{batch}--\r\n")
    request = HttpRequest("POST", f"{table.url.split('?', 1)[0].rstrip('/')}/$batch", headers={
        "x-ms-version": "2019-02-02", "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx",
        "Content-Type": f"multipart/mixed; boundary={batch}", "Accept": "application/json"},
        content=text.encode("ascii"))
    response = send(request, stream=True)  # (not decoded: the body is read below)
    if response.status_code != 202:
        raise HttpResponseError(message=f"the transaction failed with HTTP {response.status_code}",
                                response=response)
    check_answer(response.read(), len(entities))


def check_answer(body: bytes, expected: int) -> None:
    """Raise TransactionError unless every operation of the transaction succeeded."""
    statuses = [int(s) for s in _STATUS.findall(body)]
    failed = [s for s in statuses if not 200 <= s < 300]
    if failed or len(statuses) != expected:
        code = _CODE.search(body)
        reason = code.group(1).decode("utf-8", "replace") if code else None
        raise TransactionError(f"the transaction was refused ({failed[0] if failed else 'no answer'}: {reason})",
                               reason)


def _plain(entity: Mapping[str, Any]) -> bool:
    """Properties the service types right from JSON alone: text, booleans, 32-bit integers."""
    for value in entity.values():
        if isinstance(value, (bool, str)):
            continue
        if isinstance(value, int) and -_INT32 <= value < _INT32:
            continue
        return False
    return True


def transaction_chunks(items: Iterable[T], size_of: Callable[[T], int], max_items: int,
                       max_bytes: int) -> Iterator[list[T]]:
    """Items in order, cut into chunks of at most `max_items` and about `max_bytes` (by `size_of`):
    what one transaction carries (100 operations, 4 MiB)."""
    chunk: list[T] = []
    size = 0
    for item in items:
        item_size = size_of(item)
        if chunk and (len(chunk) >= max_items or size + item_size > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield chunk
