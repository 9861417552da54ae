"""Datarefs resolve only inside the watched container of the watched account; parse groups are cut
when the datarefs they hold reach the budget."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.blob import BlobServiceClient

from monitor.ingest.datarefs import DatarefSession, DatarefStore, parse_mdc_lines
from monitor.ingest.envelopes import DatarefError, parse_mdc_line
from monitor.ingest.lines import Line
from monitor.ingest.paths import parse_mdc_path
from tests.support.mdc import envelope

AZURE = DatarefStore(BlobServiceClient("https://acct.blob.core.windows.net"), 1024)
AZURITE = DatarefStore(BlobServiceClient("http://127.0.0.1:10000/devstoreaccount1"), 1024)
PATH = parse_mdc_path("modelDataCollector/e/d/model_outputs/2026/11/20/14/f.jsonl")


@pytest.mark.parametrize(("store", "ref", "name"), [
    (AZURE, "modelDataCollector/e/d/model_outputs/2026/11/20/14/ref.json",
     "modelDataCollector/e/d/model_outputs/2026/11/20/14/ref.json"),
    (AZURE, "/folder/ref.json", "folder/ref.json"),
    (AZURE, "https://acct.blob.core.windows.net/watched/folder/r%20ef.json", "folder/r ef.json"),
    (AZURE, "https://ACCT.blob.core.windows.net/watched/folder/ref.json?sv=1", "folder/ref.json"),
    (AZURITE, "http://127.0.0.1:10000/devstoreaccount1/watched/folder/ref.json", "folder/ref.json"),
])
def test_refs_inside_the_watched_container(store: DatarefStore, ref: str, name: str) -> None:
    assert store.locate(ref, "watched") == name


@pytest.mark.parametrize(("store", "ref", "reason"), [
    (AZURE, "folder/../../other/ref.json", "dataref_outside_container"),
    (AZURE, "folder/%2e%2e/ref.json", "dataref_outside_container"),
    (AZURE, "folder/..\\ref.json", "dataref_outside_container"),
    (AZURE, "./ref.json", "dataref_outside_container"),
    (AZURE, "//evil.example/watched/ref.json", "dataref_outside_container"),
    (AZURE, "https://evil.example/watched/ref.json", "dataref_outside_container"),
    (AZURE, "https://acct.blob.core.windows.net.evil.example/watched/ref.json", "dataref_outside_container"),
    (AZURE, "https://other.blob.core.windows.net/watched/ref.json", "dataref_outside_container"),
    (AZURE, "https://acct.blob.core.windows.net:444/watched/ref.json", "dataref_outside_container"),
    (AZURE, "https://acct.blob.core.windows.net/secrets/ref.json", "dataref_outside_container"),
    (AZURITE, "http://127.0.0.1:10000/otheraccount/watched/ref.json", "dataref_outside_container"),
    (AZURITE, "http://127.0.0.1:10000/devstoreaccount1/other/ref.json", "dataref_outside_container"),
    (AZURE, "file:///etc/passwd", "dataref_invalid"),
    (AZURE, "https://acct.blob.core.windows.net:99999/watched/ref.json", "dataref_invalid"),
    (AZURE, "https://acct.blob.core.windows.net/watched/", "dataref_invalid"),
    (AZURE, "folder//ref.json", "dataref_invalid"),
    (AZURE, "f" * 1025, "dataref_invalid"),
])
def test_refs_anywhere_else_are_refused_by_name(store: DatarefStore, ref: str, reason: str) -> None:
    with pytest.raises(DatarefError) as caught:
        store.locate(ref, "watched")
    assert caught.value.reason == reason and caught.value.detail


class _CountingStore(DatarefStore):
    def __init__(self, size: int) -> None:
        super().__init__(BlobServiceClient("https://acct.blob.core.windows.net"), 10**9)
        self.size = size
        self.loads: list[str] = []

    def load(self, ref: str, container: str) -> tuple[Any, int]:
        self.loads.append(ref)
        return [{"answer": ref}], self.size


def _ref_line(number: int, ref: str) -> Line:
    data = json.dumps(envelope("model_outputs", f"c{number}", PATH.hour, None, dataref=ref)).encode()  # type: ignore[union-attr]
    return Line(number, data, size=len(data))


def test_groups_are_cut_when_their_datarefs_fill_the_budget_and_repeats_share_one_load() -> None:
    store = _CountingStore(size=10)
    lines = [_ref_line(1, "a.json"), _ref_line(2, "a.json"), _ref_line(3, "b.json"), _ref_line(4, "c.json"),
             _ref_line(5, "c.json")]
    parts = list(parse_mdc_lines(lines, PATH, "correlationid", DatarefSession(store, "watched", budget=20)))
    assert [[h.line for h in halves] for halves, _ in parts] == [[1, 2, 3], [4, 5]]
    assert store.loads == ["a.json", "b.json", "c.json"]  # a.json and c.json loaded once each


def test_an_unforeseen_failure_is_that_lines_and_storage_errors_propagate() -> None:
    line = _ref_line(7, "x.json")

    def broken(ref: str) -> Any:
        raise ZeroDivisionError("a bug")

    def outage(ref: str) -> Any:
        raise ServiceRequestError("connection refused")

    halves, rejections = parse_mdc_line(line, PATH, "correlationid", broken)
    assert halves == [] and [(r.line, r.reason) for r in rejections] == [(7, "unexpected_error")]
    assert "ZeroDivisionError" in rejections[0].detail
    with pytest.raises(ServiceRequestError):
        parse_mdc_line(line, PATH, "correlationid", outage)
