"""The identity-based connection path: service URIs (`NAME__blobServiceUri`, `__queueServiceUri`,
`__tableServiceUri`) and an Entra ID token credential, as in Azure with managed identity, against
Azurite with OAuth over HTTPS. Ingestion, judging and status run end to end over it."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from monitor.azurite import start_azurite
from monitor.monitors import MonitorStore
from monitor.services import get_services
from monitor.settings import AZURITE_ACCOUNT, get_settings
from monitor.status import monitor_status
from monitor.storage import clients
from tests.support.mdc import INPUTS, OUTPUTS, monitor_config, upload_reference
from tests.support.storage import STORAGE_SETTINGS, reset_caches

pytestmark = [pytest.mark.azurite, pytest.mark.slow]


class TokenCredential:
    """What a managed identity hands the SDK: a bearer token for Azure Storage (Azurite's basic OAuth
    checks audience, issuer and lifetime, not the signature)."""

    def __init__(self) -> None:
        self.requests = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.requests += 1
        now = int(time.time())
        claims = {"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000000/",
                  "iat": now, "nbf": now, "exp": now + 3600, "oid": "11111111-1111-1111-1111-111111111111",
                  "tid": "00000000-0000-0000-0000-000000000000", "appid": "monitor-test"}
        parts = [{"typ": "JWT", "alg": "RS256"}, claims]
        token = ".".join(base64.urlsafe_b64encode(json.dumps(p).encode()).decode().rstrip("=") for p in parts)
        return AccessToken(token + ".c2lnbmF0dXJl", now + 3600)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def identity_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TokenCredential]:
    cert, key = _self_signed(tmp_path)
    emulator = start_azurite(extra_args=["--oauth", "basic", "--cert", str(cert), "--key", str(key)])
    credential = TokenCredential()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # trust the emulator's certificate
    monkeypatch.setattr(clients, "token_credential", lambda conn: credential)
    ports = {"blob": emulator.blob_port, "queue": emulator.queue_port, "table": emulator.table_port}
    for setting in STORAGE_SETTINGS:
        monkeypatch.delenv(setting, raising=False)
        for service, port in ports.items():
            monkeypatch.setenv(f"{setting}__{service}ServiceUri", f"https://127.0.0.1:{port}/{AZURITE_ACCOUNT}")
        monkeypatch.setenv(f"{setting}__credential", "managedidentity")
        monkeypatch.setenv(f"{setting}__clientId", "22222222-2222-2222-2222-222222222222")
    monkeypatch.setenv("MDC_CONTAINER", "azureml-blobstore-identity")
    reset_caches()
    try:
        yield credential
    finally:
        emulator.stop()
        reset_caches()


def test_everything_runs_over_identity_based_connections(identity_storage: TokenCredential,
                                                         monitor_name: str) -> None:
    settings = get_settings()
    assert settings.monitor_storage().identity_based and settings.mdc_storage().identity_based
    services = get_services()
    container = services.mdc_blobs.get_container_client(settings.MDC_CONTAINER)
    container.create_container()
    upload_reference(container)
    MonitorStore().put(monitor_config(monitor_name, settings.MDC_CONTAINER))
    for name in (INPUTS, OUTPUTS):
        services.ingest_client(container.get_blob_client(name))
    status = monitor_status(monitor_name)
    assert (status["records"], status["unmatched"], status["scores"]["ok"]) == (4, 1, 16)
    assert identity_storage.requests > 0  # every client asked the credential for tokens


def test_a_request_without_a_token_is_refused(identity_storage: TokenCredential) -> None:
    """The emulator really enforces OAuth here: an anonymous client is turned away."""
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import BlobServiceClient

    url = get_settings().mdc_storage().blob_uri
    with pytest.raises(HttpResponseError) as refused:
        list(BlobServiceClient(str(url)).list_containers())
    assert refused.value.status_code in (401, 403)
