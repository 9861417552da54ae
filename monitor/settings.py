"""The one settings class of the app, read from app settings / environment variables.

Nothing here runs at import time: call :func:`get_settings` (cached) when a setting is needed, so
that a missing or malformed setting fails the invocation that needs it, not the import of every
function of the app.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitor.errors import ServiceError

# The well-known development account of the Azure Storage emulator (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_connection_string(host: str = "127.0.0.1", blob: int = 10000, queue: int = 10001,
                              table: int = 10002) -> str:
    """Connection string of an Azurite instance listening on the given ports."""
    base = f"http://{host}"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={base}:{blob}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint={base}:{queue}/{AZURITE_ACCOUNT};"
        f"TableEndpoint={base}:{table}/{AZURITE_ACCOUNT};"
    )


# The Functions host sets these in Azure (never locally): there, a missing storage setting is an error,
# never the local emulator.
AZURE_MARKERS = ("WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME")
# The suffixes of an identity-based setting group the monitor reads (the host reads them case-insensitively).
GROUP_SUFFIXES = ("blobServiceUri", "queueServiceUri", "tableServiceUri", "accountName", "credential", "clientId",
                  "connectionString")
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"


class SettingError(ServiceError):
    """An app setting the monitor needs is missing or incomplete: the deployment is misconfigured."""

    code = "setting_error"
    status = 500


def running_in_azure() -> str | None:
    """The name of the Azure marker setting when running in an Azure Functions host, else None."""
    return next((name for name in AZURE_MARKERS if os.environ.get(name)), None)


@dataclass(frozen=True)
class Connection:
    """How to reach one storage account: a connection string, or service URIs plus an identity."""

    setting: str
    connection_string: str | None = None
    blob_uri: str | None = None
    queue_uri: str | None = None
    table_uri: str | None = None
    credential: str | None = None
    client_id: str | None = None

    @property
    def identity_based(self) -> bool:
        return self.connection_string is None

    def endpoint(self, service: Literal["blob", "queue", "table"]) -> str:
        """The service URI of an identity-based connection; an error naming the missing setting."""
        uri = {"blob": self.blob_uri, "queue": self.queue_uri, "table": self.table_uri}[service]
        if not uri:
            raise SettingError(
                f"app setting {self.setting}__{service}ServiceUri is not set, and the {service} service of "
                f"{self.setting} is needed: set it (or {self.setting}__accountName, or a connection string "
                f"in {self.setting})"
            )
        return uri


def _group(setting: str) -> dict[str, str]:
    """`setting__suffix` values by lower-case suffix (the host matches them case-insensitively)."""
    prefix = f"{setting}__"
    return {key[len(prefix):].lower(): value for key, value in os.environ.items()
            if key.startswith(prefix) and value}


def _connection(setting: str) -> Connection:
    """Resolve `setting` the way the Functions host does: a plain value or a `setting__*` group.

    Unset, it is the local Azurite development account, but only outside Azure: in Azure (the host
    sets WEBSITE_INSTANCE_ID / WEBSITE_SITE_NAME) a missing or incomplete group is a SettingError
    naming the setting, raised here, at the first use of the connection.
    """
    group = _group(setting)
    value = os.environ.get(setting) or group.get("connectionstring")
    if value:
        if value.strip() == DEVELOPMENT_STORAGE:
            _refuse_emulator_in_azure(setting)
            value = azurite_connection_string()
        return Connection(setting=setting, connection_string=value)
    account = group.get("accountname")
    uris = {f"{service}_uri": group.get(f"{service}serviceuri") or _account_uri(account, service)
            for service in ("blob", "queue", "table")}
    if any(uris.values()):
        return Connection(setting=setting, credential=group.get("credential"), client_id=group.get("clientid"),
                          **uris)
    if group:
        present = ", ".join(f"{setting}__{suffix}" for suffix in sorted(group))
        raise SettingError(
            f"app setting group {setting} is incomplete: {present} set, but no endpoint; set "
            f"{setting}__blobServiceUri (and __queueServiceUri / __tableServiceUri as needed), "
            f"{setting}__accountName, or a connection string in {setting}"
        )
    _refuse_emulator_in_azure(setting)
    return Connection(setting=setting, connection_string=azurite_connection_string())


def _refuse_emulator_in_azure(setting: str) -> None:
    marker = running_in_azure()
    if marker:
        raise SettingError(
            f"app setting {setting} is not configured for Azure ({marker} is set, so the local storage "
            f"emulator is not an option): set {setting}__blobServiceUri, {setting}__queueServiceUri, "
            f"{setting}__tableServiceUri, {setting}__credential=managedidentity and {setting}__clientId "
            f"(infra/app/function.bicep sets them), or a connection string in {setting}"
        )


def _account_uri(account: str | None, service: str) -> str | None:
    return f"https://{account}.{service}.core.windows.net" if account else None


class Settings(BaseSettings):
    """Every app setting the monitor reads. Storage connections are resolved separately (see
    :meth:`monitor_storage` / :meth:`mdc_storage`) because they are setting *groups*."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    MDC_CONTAINER: str = "azureml"
    EVALUATION_QUEUE: str = "evaluation-batches"
    AGGREGATION_SCHEDULE: str = "0 */15 * * * *"
    MONITOR_API_KEY: str | None = None
    # The largest request body the API reads (bytes); longer ones are refused with 413 unread.
    MAX_REQUEST_BYTES: int = Field(default=1_000_000, gt=0, le=64 * 1024 * 1024)
    # Ingestion limits.
    # MDC inlines payloads up to 4 MB, plus the envelope; a longer line is quarantined.
    MAX_LINE_BYTES: int = Field(default=8 * 1024 * 1024, gt=0)
    MAX_DATAREF_BYTES: int = Field(default=256 * 1024 * 1024, gt=0)
    JOIN_TTL_MINUTES: int = Field(default=60, gt=0)
    # Records judged inside one blob-trigger invocation; larger blobs fan out through the queue.
    INLINE_BATCH_LIMIT: int = Field(default=200, gt=0)
    BATCH_SIZE: int = Field(default=50, gt=0, le=99)
    # Tailing growing blobs (docs/ingestion.md): the tail timer's schedule, the delay after a
    # rolling period's end before an unchanged blob closes, how long a pass holds a blob's lease,
    # and how many sampled halves a pass keeps in memory waiting for their partner.
    TAIL_SCHEDULE: str = "0 */1 * * * *"
    TAIL_GRACE_MINUTES: int = Field(default=10, ge=0)
    TAIL_LEASE_SECONDS: float = Field(default=600.0, gt=0)
    TAIL_JOIN_BUFFER: int = Field(default=50_000, gt=0)
    # How often a tail pass walks a monitor's whole folder tree (the full sweep); the passes in
    # between list only the folders of its open blobs and their current periods (docs/ingestion.md).
    TAIL_SWEEP_MINUTES: int = Field(default=15, ge=0)
    # Judge defaults the demo and monitors without explicit judge settings fall back on.
    AZURE_OPENAI_ENDPOINT: str | None = None
    AZURE_OPENAI_DEPLOYMENT: str | None = None
    AZURE_OPENAI_API_VERSION: str = "2024-10-21"
    OPENAI_BASE_URL: str | None = None
    OPENAI_MODEL: str | None = None
    # Shared judge budgets (docs/quotas.md): how often an instance renews its lease, and how long a
    # lease lasts without renewal (a killed instance's share returns to the fleet after this).
    QUOTA_LEASE_SECONDS: float = Field(default=5.0, gt=0, le=60)
    QUOTA_LEASE_TTL_SECONDS: float = Field(default=15.0, gt=0, le=300)
    # Aggregation.
    AGGREGATION_LOOKBACK_HOURS: int = Field(default=6, ge=0)
    WEBHOOK_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0)
    WEBHOOK_ATTEMPTS: int = Field(default=3, ge=1)
    # Webhook delivery: first backoff between attempts (doubles each time) and the attempts an alert
    # gets in total over all runs (a later run retries a failed delivery until these are spent).
    WEBHOOK_BACKOFF_SECONDS: float = Field(default=1.0, ge=0)
    WEBHOOK_MAX_ATTEMPTS: int = Field(default=12, ge=1)
    # Judge calibration (docs/calibration.md): golden-set limits and how often it is re-judged.
    GOLDEN_MAX_RECORDS: int = Field(default=1000, ge=1, le=20_000)
    GOLDEN_MAX_BYTES: int = Field(default=5_000_000, ge=1)
    CALIBRATION_PERIOD_HOURS: int = Field(default=24, ge=1, le=24 * 366)
    APPLICATIONINSIGHTS_CONNECTION_STRING: str | None = None
    # The user-assigned managed identity of the app in Azure (DefaultAzureCredential reads it too).
    AZURE_CLIENT_ID: str | None = None

    # Outbound trust boundary (docs/security.md): hosts outbound calls may reach (comma-separated,
    # `*.suffix` allowed; unset = any public or private host), and extra setting names a config may
    # name in judge.api_key_setting (beside OPENAI_API_KEY, AZURE_OPENAI_API_KEY and JUDGE_KEY_*).
    OUTBOUND_ALLOWED_HOSTS: str | None = None
    JUDGE_KEY_SETTINGS: str | None = None
    # Set by the Functions host in Azure; their presence means "not local" (no loopback, https only).
    WEBSITE_INSTANCE_ID: str | None = None
    WEBSITE_SITE_NAME: str | None = None
    # Custom metric prompt files: a second folder searched after prompts/ (operator-controlled), and
    # the size cap checked before reading.
    CUSTOM_PROMPTS_DIR: str | None = None
    MAX_PROMPT_BYTES: int = Field(default=64 * 1024, gt=0, le=1024 * 1024)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", alias="LOG_LEVEL")

    @property
    def in_azure(self) -> bool:
        """Running under the Functions host in Azure (not local development)."""
        return bool(self.WEBSITE_INSTANCE_ID or self.WEBSITE_SITE_NAME)

    def monitor_storage(self) -> Connection:
        """The account that holds the monitor's own state: tables and queues."""
        return _connection("MONITOR_STORAGE")

    def mdc_storage(self) -> Connection:
        """The watched account where Model Data Collector writes."""
        return _connection("MDC_STORAGE")


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
