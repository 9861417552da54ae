"""Settings resolve connections the way the Functions host does; sampling is deterministic."""

from __future__ import annotations

import pytest

from monitor.ingest.claims import sampled
from monitor.keys import safe_key
from monitor.settings import AZURITE_ACCOUNT, Settings, reset_settings


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MONITOR_STORAGE", "MDC_STORAGE"):
        monkeypatch.delenv(name, raising=False)
        for suffix in ("blobServiceUri", "queueServiceUri", "tableServiceUri", "credential", "clientId",
                       "accountName"):
            monkeypatch.delenv(f"{name}__{suffix}", raising=False)
    reset_settings()


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
