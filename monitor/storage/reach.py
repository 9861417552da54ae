"""One line that says which storage could not be reached and which setting names it.

Used by the command line when a storage call fails to connect or is refused, instead of the SDK's
traceback: the endpoint (account) that failed, the setting it came from (`MONITOR_STORAGE` for
tables and queues, `MDC_STORAGE` for the watched blobs) and what to check.
"""

from __future__ import annotations

import os
import re
import socket
from urllib.parse import urlsplit

from monitor.errors import StorageError
from monitor.settings import Connection, get_settings

_SERVICES = {"MDC_STORAGE": ("blob",), "MONITOR_STORAGE": ("table", "queue")}
PROBE_TIMEOUT_SECONDS = 3.0


def endpoints(conn: Connection) -> dict[str, str]:
    """Service -> endpoint URL of a connection (from its connection string or its URIs)."""
    if conn.connection_string:
        parts = dict(p.split("=", 1) for p in conn.connection_string.split(";") if "=" in p)
        found = {s: parts[f"{s.capitalize()}Endpoint"] for s in ("blob", "queue", "table")
                 if f"{s.capitalize()}Endpoint" in parts}
        account, suffix = parts.get("AccountName"), parts.get("EndpointSuffix", "core.windows.net")
        scheme = parts.get("DefaultEndpointsProtocol", "https")
        for service in ("blob", "queue", "table"):
            if service not in found and account:
                found[service] = f"{scheme}://{account}.{service}.{suffix}"
        return found
    uris = {"blob": conn.blob_uri, "queue": conn.queue_uri, "table": conn.table_uri}
    return {s: u for s, u in uris.items() if u}


def _how_set(setting: str) -> str:
    if os.environ.get(setting) or any(k.startswith(f"{setting}__") for k in os.environ):
        return f"check {setting}"
    return f"{setting} is not set, so this is the local Azurite development account: start Azurite or set {setting}"


def _netloc(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.lower()


def _mentioned(message: str) -> set[str]:
    """host:port pairs an SDK message names (urllib3 style or as URLs)."""
    found = {f"{h}:{p}".lower() for h, p in re.findall(r"host='([^']+)', port=(\d+)", message)}
    found |= {m.lower() for m in re.findall(r"https?://([^/\s'\"]+)", message)}
    return found


def _candidates() -> list[tuple[str, str, str]]:
    """(setting, service, endpoint URL) of every service the commands use: MDC blobs, monitor tables/queues."""
    settings = get_settings()
    connections = (("MDC_STORAGE", settings.mdc_storage()), ("MONITOR_STORAGE", settings.monitor_storage()))
    return [(setting, service, url)
            for setting, conn in connections
            for service, url in endpoints(conn).items() if service in _SERVICES[setting]]


def check_reachable(services: tuple[str, ...] = ("table",)) -> None:
    """Fail fast, in one line, when an endpoint the command needs does not accept connections (the
    SDK would retry with backoff for up to a minute and a half before giving up)."""
    for setting, service, url in _candidates():
        if service not in services:
            continue
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "", port), timeout=PROBE_TIMEOUT_SECONDS):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise StorageError(f"cannot reach {service} storage at {url} ({reason}); {_how_set(setting)}") from None


def describe_storage_failure(exc: BaseException) -> str:
    """`cannot reach table storage at http://127.0.0.1:10002/devstoreaccount1 (MONITOR_STORAGE ...)`."""
    message = str(exc)
    mentioned = _mentioned(message)
    candidates = _candidates()
    match = next((c for c in candidates if _netloc(c[2]) in mentioned), None)
    setting, service, url = match or next((c for c in candidates if c[1] == "table"), ("MONITOR_STORAGE", "table",
                                                                                       "(unknown endpoint)"))
    status = getattr(exc, "status_code", None)
    if status in (401, 403) or type(exc).__name__ == "ClientAuthenticationError":
        return (f"{service} storage at {url} refused access (HTTP {status or 'authentication failed'}); "
                f"check the key or the identity's role assignments in {setting}")
    return f"cannot reach {service} storage at {url}; {_how_set(setting)}"
