"""Settings resolve connections the way the Functions host does; sampling is deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.evaluate.queue import max_dequeue_count
from monitor.ingest.claims import sampled
from monitor.keys import safe_key
from monitor.settings import AZURE_MARKERS, AZURITE_ACCOUNT, SettingError, Settings, reset_settings
from monitor.storage.clients import queue_service, reset_clients, table_service

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key in ("MONITOR_STORAGE", "MDC_STORAGE", *AZURE_MARKERS) or key.startswith(
                ("MONITOR_STORAGE__", "MDC_STORAGE__")):
            monkeypatch.delenv(key)
    reset_settings()
    reset_clients()


@pytest.fixture(params=AZURE_MARKERS)
def in_azure(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """What the Functions host sets in Azure (either marker is enough)."""
    monkeypatch.setenv(request.param, "func-abc" if request.param == "WEBSITE_SITE_NAME" else "a1b2c3")
    return str(request.param)


def test_unset_means_the_local_azurite_account() -> None:
    conn = Settings().monitor_storage()
    assert conn.connection_string and AZURITE_ACCOUNT in conn.connection_string and not conn.identity_based


def test_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDC_STORAGE", "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k")
    assert Settings().mdc_storage().connection_string == "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k"


def test_identity_based_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_STORAGE__blobServiceUri", "https://acct.blob.core.windows.net")
    monkeypatch.setenv("MONITOR_STORAGE__tableServiceUri", "https://acct.table.core.windows.net")
    monkeypatch.setenv("MONITOR_STORAGE__credential", "managedidentity")
    monkeypatch.setenv("MONITOR_STORAGE__clientId", "1111")
    conn = Settings().monitor_storage()
    assert conn.identity_based and conn.credential == "managedidentity" and conn.client_id == "1111"
    assert conn.table_uri == "https://acct.table.core.windows.net" and conn.queue_uri is None


def test_account_name_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDC_STORAGE__accountName", "wsstore")
    conn = Settings().mdc_storage()
    assert conn.blob_uri == "https://wsstore.blob.core.windows.net"
    assert conn.queue_uri == "https://wsstore.queue.core.windows.net"


def test_development_storage_shortcut_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_STORAGE", "UseDevelopmentStorage=true")
    conn = Settings().monitor_storage()
    assert conn.connection_string and AZURITE_ACCOUNT in conn.connection_string


def test_group_suffixes_are_case_insensitive_like_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDC_STORAGE__BlobServiceUri", "https://ws.blob.core.windows.net")
    monkeypatch.setenv("MDC_STORAGE__CLIENTID", "3333")
    conn = Settings().mdc_storage()
    assert conn.blob_uri == "https://ws.blob.core.windows.net" and conn.client_id == "3333"


def test_incomplete_group_is_an_error_even_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    """A group with no endpoint (here a typo in the suffix) is never silently the emulator."""
    monkeypatch.setenv("MDC_STORAGE__blobServiceUrl", "https://ws.blob.core.windows.net")
    monkeypatch.setenv("MDC_STORAGE__credential", "managedidentity")
    settings = Settings()  # nothing is resolved before the first use
    with pytest.raises(SettingError) as caught:
        settings.mdc_storage()
    message = caught.value.message
    assert "MDC_STORAGE is incomplete" in message
    assert "MDC_STORAGE__blobserviceurl" in message and "MDC_STORAGE__credential" in message
    assert "set MDC_STORAGE__blobServiceUri" in message


@pytest.mark.parametrize("setting", ["MONITOR_STORAGE", "MDC_STORAGE"])
def test_in_azure_a_missing_setting_is_an_error_naming_it(in_azure: str, setting: str) -> None:
    settings = Settings()
    resolve = settings.monitor_storage if setting == "MONITOR_STORAGE" else settings.mdc_storage
    with pytest.raises(SettingError) as caught:
        resolve()
    message = caught.value.message
    assert f"app setting {setting} is not configured for Azure ({in_azure} is set" in message
    assert f"{setting}__blobServiceUri" in message and f"{setting}__credential=managedidentity" in message
    assert caught.value.status == 500


def test_in_azure_the_emulator_shortcut_is_refused(in_azure: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_STORAGE", "UseDevelopmentStorage=true")
    with pytest.raises(SettingError, match="MONITOR_STORAGE is not configured for Azure"):
        Settings().monitor_storage()


def test_in_azure_a_complete_group_works(in_azure: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDC_STORAGE__blobServiceUri", "https://ws.blob.core.windows.net/")
    monkeypatch.setenv("MDC_STORAGE__queueServiceUri", "https://app.queue.core.windows.net/")
    monkeypatch.setenv("MDC_STORAGE__credential", "managedidentity")
    monkeypatch.setenv("MDC_STORAGE__clientId", "4444")
    conn = Settings().mdc_storage()
    assert conn.identity_based and conn.queue_uri == "https://app.queue.core.windows.net/"


def test_in_azure_a_half_set_group_fails_at_first_use_of_the_missing_service(
        in_azure: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the blob URI: resolving works, the first table client names the missing setting."""
    monkeypatch.setenv("MONITOR_STORAGE__blobServiceUri", "https://app.blob.core.windows.net/")
    monkeypatch.setenv("MONITOR_STORAGE__credential", "managedidentity")
    conn = Settings().monitor_storage()
    with pytest.raises(SettingError, match=r"app setting MONITOR_STORAGE__tableServiceUri is not set"):
        table_service(conn)
    with pytest.raises(SettingError, match=r"app setting MONITOR_STORAGE__queueServiceUri is not set"):
        queue_service(conn)


def test_invalid_setting_is_rejected_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_SIZE", "500")
    with pytest.raises(ValueError, match="BATCH_SIZE"):
        Settings()


def test_sampling_is_deterministic_and_close_to_the_rate() -> None:
    keys = [f"corr-{i}" for i in range(20_000)]
    first = [sampled(k, 0.25) for k in keys]
    assert first == [sampled(k, 0.25) for k in keys]
    assert 0.23 < sum(first) / len(keys) < 0.27
    assert all(sampled(k, 1.0) for k in keys[:100])
    # A smaller rate selects a subset of a larger one: lowering the rate never adds records.
    assert all(a or not b for a, b in zip(first, (sampled(k, 0.1) for k in keys), strict=True))


def test_safe_key_escapes_forbidden_characters_reversibly() -> None:
    assert safe_key("a/b\\c#d?e%f\x01") == "a!2Fb!5Cc!23d!3Fe!25f!01"
    assert safe_key("7415b7a9-0002_1") == "7415b7a9-0002_1"


def test_max_dequeue_count_comes_from_host_json(tmp_path: Path) -> None:
    """One source for the attempts a queue message gets: host.json (the host in Azure reads it too)."""
    host = json.loads((REPO / "host.json").read_text(encoding="utf-8"))
    assert max_dequeue_count() == host["extensions"]["queues"]["maxDequeueCount"]
    cases = {"three": {"version": "2.0", "extensions": {"queues": {"maxDequeueCount": 3}}},
             "unset": {"version": "2.0"}, "zero": {"extensions": {"queues": {"maxDequeueCount": 0}}}}
    for name, content in cases.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(content), encoding="utf-8")
    assert max_dequeue_count(tmp_path / "three.json") == 3
    assert max_dequeue_count(tmp_path / "unset.json") == 5, "the host's default when host.json does not set it"
    with pytest.raises(ValueError, match="maxDequeueCount must be a positive integer"):
        max_dequeue_count(tmp_path / "zero.json")
