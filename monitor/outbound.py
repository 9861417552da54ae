"""Where the app may send requests, and which app settings a monitor config may name.

A monitor config is written by whoever holds the API key; it must not be able to point the app at
itself. This module is the one place that decides (docs/security.md):

- **URLs** a config names (the judge's ``endpoint`` / ``base_url``, ``alerts.webhook_url``, and any
  future outbound service such as Content Safety) must be ``https``. Loopback hosts (``localhost``,
  ``127.0.0.0/8``, ``::1``) are accepted only in local mode (not running in Azure: the Functions host
  sets ``WEBSITE_INSTANCE_ID`` / ``WEBSITE_SITE_NAME``), and only there over plain ``http``.
  Link-local, metadata, unspecified, multicast and reserved addresses are refused always, for literal
  hosts when the config is stored and for every address a name resolves to when a request is made
  (:class:`GuardedResolver` for the judge, :func:`guarded_connection` for webhooks), so a name that
  resolves elsewhere later is still refused. ``OUTBOUND_ALLOWED_HOSTS`` (comma-separated hosts,
  ``*.suffix`` patterns) narrows every outbound host further.
- **Entra ID tokens** go only to Azure AI hosts (``*.openai.azure.com``, ``*.cognitiveservices.azure.com``,
  ``*.services.ai.azure.com`` and their sovereign-cloud twins), to hosts listed by name in
  ``OUTBOUND_ALLOWED_HOSTS`` (a private DNS name, an API gateway), or to loopback in local mode.
- **Key settings**: ``judge.api_key_setting`` may name ``OPENAI_API_KEY``, ``AZURE_OPENAI_API_KEY``,
  any setting starting with ``JUDGE_KEY_``, or a setting listed in ``JUDGE_KEY_SETTINGS``; never a
  storage connection, the API key, identity or platform settings, whatever the allow-list says.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from monitor.errors import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

KEY_SETTING_PREFIX = "JUDGE_KEY_"
WELL_KNOWN_KEY_SETTINGS = frozenset({"OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"})
# Never nameable, even when listed in JUDGE_KEY_SETTINGS: exact names, then name prefixes.
FORBIDDEN_SETTINGS = frozenset({
    "MONITOR_API_KEY", "MONITOR_STORAGE", "MDC_STORAGE", "AzureWebJobsStorage",
    "APPLICATIONINSIGHTS_CONNECTION_STRING", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_HEADER", "IDENTITY_ENDPOINT",
    "MSI_SECRET", "MSI_ENDPOINT", "CONTAINER_ENCRYPTION_KEY", "OUTBOUND_ALLOWED_HOSTS", "JUDGE_KEY_SETTINGS",
})
FORBIDDEN_SETTING_PREFIXES = ("MONITOR_STORAGE__", "MDC_STORAGE__", "AzureWebJobs", "WEBSITE_", "FUNCTIONS_",
                              "IDENTITY_", "MSI_", "SCM_", "APPSETTING_")

# Hosts that accept Entra ID tokens for Azure OpenAI / Azure AI services.
AZURE_AI_SUFFIXES = (
    ".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com",
    ".openai.azure.us", ".cognitiveservices.azure.us", ".openai.azure.cn", ".cognitiveservices.azure.cn",
)
# Cloud metadata and platform endpoints (also refused where they are not link-local).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "168.63.129.16", "100.100.100.200", "fd00:ec2::254",
))
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.azure.internal", "instance-data"})
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


class OutboundError(ConfigError):
    """A URL or a setting name that a config may not use; details name the field."""

    code = "outbound_refused"
    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", details=[{"field": field, "message": message}])
        self.field = field


class OutboundRefusedError(OSError):
    """Raised at connection time when a name resolves to an address the policy refuses."""


@dataclass(frozen=True)
class OutboundPolicy:
    """The rules above, for one environment (see :func:`current_policy`)."""

    in_azure: bool = False
    allowed_hosts: tuple[str, ...] = ()
    extra_key_settings: frozenset[str] = frozenset()

    # --- setting names ---------------------------------------------------------------------------
    def check_key_setting(self, name: str, field: str = "judge.api_key_setting") -> None:
        if _forbidden_setting(name):
            raise OutboundError(field, f"{name!r} is not a judge key setting and can never be named here "
                                       "(storage, API key, identity and platform settings are refused)")
        if name in WELL_KNOWN_KEY_SETTINGS or name.startswith(KEY_SETTING_PREFIX) or name in self.extra_key_settings:
            return
        raise OutboundError(field, f"{name!r} is not a judge key setting: name OPENAI_API_KEY, AZURE_OPENAI_API_KEY, "
                                   f"a setting starting with {KEY_SETTING_PREFIX}, or one listed in JUDGE_KEY_SETTINGS")

    # --- URLs ------------------------------------------------------------------------------------
    def check_url(self, url: str, field: str) -> SplitResult:
        """Static checks of a URL (no DNS): scheme, credentials, literal addresses, allow-list."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").rstrip(".").lower()
            parts.port  # noqa: B018 - a malformed port raises ValueError here
        except ValueError as exc:
            raise OutboundError(field, f"not a valid URL ({exc})") from None
        if parts.scheme not in ("https", "http") or not host:
            raise OutboundError(field, "must be an https:// URL with a host")
        host = normalised_host(host, field)
        if parts.username is not None or parts.password is not None:
            raise OutboundError(field, "must not carry credentials (user:password@); secrets live in app settings")
        loopback = self.check_host(host, field)
        if parts.scheme == "http" and not loopback:
            raise OutboundError(field, "must use https (plain http is accepted only for a loopback server "
                                       "in local development)")
        return parts

    def check_host(self, host: str, field: str) -> bool:
        """Refuse a host name or literal address; True where it is loopback (accepted locally)."""
        if host in METADATA_HOSTS:
            raise OutboundError(field, f"{host} is a cloud metadata endpoint")
        address = literal_address(host)
        loopback = host == "localhost" or host.endswith(".localhost")
        if address is not None:
            refused = refused_address(address)
            if refused:
                raise OutboundError(field, f"{host} is {refused}")
            loopback = loopback or address.is_loopback
        if loopback and self.in_azure:
            raise OutboundError(field, f"{host} is a loopback address, accepted only in local development")
        if self.allowed_hosts and not host_allowed(host, self.allowed_hosts):
            raise OutboundError(field, f"{host} is not in OUTBOUND_ALLOWED_HOSTS")
        return loopback

    def check_address(self, host: str, address: IPAddress) -> None:
        """A resolved address of `host`, at connection time: raises OutboundRefusedError."""
        refused = refused_address(address)
        if refused is None and address.is_loopback and self.in_azure:
            refused = "a loopback address (refused in Azure)"
        if refused is not None:
            raise OutboundRefusedError(f"{host} resolves to {address}, {refused}: request refused")

    def token_allowed(self, url: str) -> bool:
        """Whether an Entra ID token may be sent to `url` (already passed :meth:`check_url`)."""
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
        if host.endswith(AZURE_AI_SUFFIXES) or host in self.allowed_hosts:
            return True
        address = literal_address(host)
        loopback = host == "localhost" or (address is not None and address.is_loopback)
        return loopback and not self.in_azure


_HOST_CHARS = re.compile(r"[a-z0-9.:-]+")


def normalised_host(host: str, field: str) -> str:
    """The host as a client will connect to it: IDNA-encoded (full-width digits and ideographic
    dots become ASCII, as HTTP clients encode them), then only letters, digits, '.', '-' and ':'."""
    try:
        ascii_host = host.encode("idna").decode("ascii").lower() if not host.isascii() else host
    except UnicodeError:
        raise OutboundError(field, "not a valid host name") from None
    if not _HOST_CHARS.fullmatch(ascii_host):
        raise OutboundError(field, "not a valid host name (letters, digits, '.', '-' only)")
    return ascii_host.rstrip(".")


def current_policy() -> OutboundPolicy:
    """The policy of this process, from the settings (read when called, never at import)."""
    from monitor.settings import get_settings

    settings = get_settings()
    return OutboundPolicy(
        in_azure=settings.in_azure,
        allowed_hosts=split_list(settings.OUTBOUND_ALLOWED_HOSTS, lower=True),
        extra_key_settings=frozenset(split_list(settings.JUDGE_KEY_SETTINGS)),
    )


def split_list(value: str | None, *, lower: bool = False) -> tuple[str, ...]:
    items = (item.strip().rstrip(".") for item in (value or "").split(","))
    return tuple(item.lower() if lower else item for item in items if item)


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    for entry in allowed:
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def literal_address(host: str) -> IPAddress | None:
    """The address a host literal stands for, including legacy IPv4 spellings (`0xA9FEA9FE`,
    `2852039166`, `169.254.43518`) that resolvers accept."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def refused_address(address: IPAddress) -> str | None:
    """Why an address may never be called (None: it may, loopback aside)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is None and address in NAT64_PREFIX:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return refused_address(embedded)
    if address.is_loopback:
        return None  # accepted or not by the caller, by mode
    if address in METADATA_ADDRESSES:
        return "a cloud metadata endpoint"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified or address.is_multicast or address.is_reserved or address in THIS_NETWORK:
        return "not a routable unicast address"
    return None


def _forbidden_setting(name: str) -> bool:
    upper = name.upper()
    if any(upper == f.upper() for f in FORBIDDEN_SETTINGS):
        return True
    return any(upper.startswith(p.upper()) for p in FORBIDDEN_SETTING_PREFIXES)


# --- connection-time guards ------------------------------------------------------------------------
def checked_addresses(policy: OutboundPolicy, host: str, port: int) -> list[Any]:
    """getaddrinfo results for host:port, refused whole if any address is refused."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        policy.check_address(host, ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
    return list(infos)


def guarded_connection(policy: OutboundPolicy) -> Callable[..., socket.socket]:
    """A replacement for `socket.create_connection` that resolves, checks every address, then
    connects to the checked addresses (never resolving again)."""
    def connect(address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
                source_address: Any = None, **_: Any) -> socket.socket:
        host, port = address
        error: OSError | None = None
        for family, kind, proto, _name, target in checked_addresses(policy, host, port):
            sock = socket.socket(family, kind, proto)
            try:
                if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(target)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error or OSError(f"{host} did not resolve")
    return connect
