"""The shared async openai client: one per process per (provider, endpoint, key source).

A client per call costs tens of milliseconds of CPU (the peer SDK pays it on every row); one client
with the aiohttp transport costs about 2 ms per request (PLATFORM.md). The client is built on the
judge loop (:mod:`monitor.judge.runtime`) and reused by every invocation in the process. Its own
retries are off (`max_retries=0`): the engine's retry loop is the only one.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from openai import AsyncAzureOpenAI, AsyncOpenAI, DefaultAioHttpClient

from monitor.config import JudgeConfig
from monitor.errors import JudgeFatalError
from monitor.judge.runtime import Runtime
from monitor.outbound import OutboundError, OutboundPolicy, current_policy

COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
# Local OpenAI-compatible servers (vLLM, Ollama, llama.cpp) accept any key; the client needs one.
PLACEHOLDER_KEY = "no-key-needed"


@dataclass(frozen=True)
class ClientSpec:
    """What identifies a shared client. The key itself is not part of equality, its fingerprint is
    (a rotated key builds a new client)."""

    provider: str
    endpoint: str
    api_version: str | None
    key_source: str
    fingerprint: str
    api_key: str | None = field(default=None, compare=False, repr=False)
    # The outbound rules the client's connections are checked against (docs/security.md).
    policy: OutboundPolicy = field(default_factory=OutboundPolicy)

    @property
    def target(self) -> str:
        """Where requests go, for error messages."""
        return self.endpoint or OPENAI_DEFAULT_URL


def client_spec(judge: JudgeConfig, environ: dict[str, str] | None = None,
                policy: OutboundPolicy | None = None) -> ClientSpec:
    """Resolve the endpoint and the key source of a judge config. Raises JudgeFatalError when a named
    key setting is missing (nothing would work without it) or when the config asks for something the
    outbound policy refuses (a setting that is not a judge key, an endpoint the app may not call, an
    Entra token for a host that is not Azure AI)."""
    env = os.environ if environ is None else environ
    policy = policy or current_policy()
    try:
        key, source = _api_key(judge, env, policy)
        if judge.provider == "azure_openai":
            endpoint, version, where = str(judge.endpoint), judge.api_version, "judge.endpoint"
        else:
            endpoint, version = judge.base_url or env.get("OPENAI_BASE_URL", ""), None
            where = "judge.base_url" if judge.base_url else "OPENAI_BASE_URL"
        policy.check_url(endpoint or OPENAI_DEFAULT_URL, where)
    except OutboundError as exc:
        raise JudgeFatalError(f"the judge configuration is refused: {exc.message} (docs/security.md)") from None
    if source == "entra" and not policy.token_allowed(endpoint):
        raise JudgeFatalError(
            f"judge.endpoint {endpoint} is not an Azure AI host (*.openai.azure.com, *.cognitiveservices.azure.com, "
            "*.services.ai.azure.com): the app sends its Entra ID token only there, or to a host listed by name in "
            "OUTBOUND_ALLOWED_HOSTS; name a key setting in judge.api_key_setting for other servers")
    if key is None and judge.provider != "azure_openai":
        if not endpoint:
            raise JudgeFatalError(
                "the openai judge has no API key: set OPENAI_API_KEY, or name the app setting "
                "holding the key in judge.api_key_setting (or set judge.base_url for a local server)"
            )
        key, source = PLACEHOLDER_KEY, "placeholder"
    fingerprint = hashlib.sha256((key or "").encode()).hexdigest()[:16]
    return ClientSpec(judge.provider, endpoint, version, source, fingerprint, key, policy)


def _api_key(judge: JudgeConfig, env: Any, policy: OutboundPolicy) -> tuple[str | None, str]:
    if judge.api_key_setting:
        policy.check_key_setting(judge.api_key_setting)
        value = env.get(judge.api_key_setting)
        if not value:
            alternative = ("remove it to use Entra ID (managed identity)" if judge.provider == "azure_openai"
                           else "or remove it to use OPENAI_API_KEY")
            raise JudgeFatalError(
                f"judge.api_key_setting names the app setting {judge.api_key_setting!r}, which is not set: "
                f"set it to the judge's API key, {alternative}"
            )
        return str(value), f"setting:{judge.api_key_setting}"
    if judge.provider == "azure_openai":
        return None, "entra"
    value = env.get("OPENAI_API_KEY")
    return (str(value), "setting:OPENAI_API_KEY") if value else (None, "none")


def shared_client(runtime: Runtime, spec: ClientSpec) -> AsyncOpenAI:
    """The process's client for `spec`, created on first use. Call on the judge loop."""
    def build() -> AsyncOpenAI:
        provider = _entra_token_provider(runtime) if spec.key_source == "entra" else None
        return build_client(spec, provider)

    return runtime.shared(("client", spec), build, _close_client)


def build_client(spec: ClientSpec, token_provider: Any = None) -> AsyncOpenAI:
    """A client without retries on the aiohttp transport (a key, or an Entra token provider).

    Redirects are not followed (a redirect would carry the `api-key` header to another host), and
    every address a host name resolves to is checked against the outbound policy when a connection
    is opened (:class:`GuardedResolver`)."""
    http_client = DefaultAioHttpClient(transport=_guarded_transport(spec.policy), follow_redirects=False)
    if spec.provider == "azure_openai":
        if token_provider is not None:
            return AsyncAzureOpenAI(azure_endpoint=spec.endpoint, api_version=spec.api_version,
                                    azure_ad_token_provider=token_provider, max_retries=0,
                                    http_client=http_client)
        return AsyncAzureOpenAI(azure_endpoint=spec.endpoint, api_version=spec.api_version,
                                api_key=spec.api_key, max_retries=0, http_client=http_client)
    return AsyncOpenAI(api_key=spec.api_key, base_url=spec.endpoint or None, max_retries=0,
                       http_client=http_client)


def _entra_token_provider(runtime: Runtime) -> Any:
    """An async bearer-token provider over one shared DefaultAzureCredential (managed identity in
    Azure, the developer's login locally); async so that token refreshes never block the loop."""
    from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

    credential = runtime.shared(("entra-credential",), DefaultAzureCredential, _close_credential)
    return get_bearer_token_provider(credential, COGNITIVE_SCOPE)


async def _close_credential(credential: Any) -> None:
    await credential.close()


async def _close_client(client: AsyncOpenAI) -> None:
    await client.close()


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded resolver, refusing a name whose addresses the policy refuses (metadata,
    link-local; loopback in Azure). Runs for every new connection, so a name that resolves elsewhere
    after the config was stored is still refused. (aiohttp skips resolvers for literal addresses:
    those are checked with the URL, see :meth:`OutboundPolicy.check_url`.)"""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            self._policy.check_address(host, ipaddress.ip_address(result["host"].split("%", 1)[0]))
        return results

    async def close(self) -> None:
        await self._inner.close()


def _guarded_transport(policy: OutboundPolicy) -> Any:
    """openai's aiohttp transport over a session whose connector resolves through GuardedResolver."""
    try:  # the transport openai's DefaultAioHttpClient uses: vendored in current releases
        from openai._vendor.httpx_aiohttp import AiohttpTransport
    except ImportError:  # older releases depend on the httpx-aiohttp package
        from httpx_aiohttp import AiohttpTransport  # type: ignore[no-redef,import-not-found,unused-ignore]

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy), ssl=ssl.create_default_context(),
                                         keepalive_timeout=5.0, limit=1000)
        return aiohttp.ClientSession(connector=connector)

    return AiohttpTransport(client=session)
