"""The shared async openai client: one per process per (provider, endpoint, key source).

A client per call costs tens of milliseconds of CPU (the peer SDK pays it on every row); one client
with the aiohttp transport costs about 2 ms per request (PLATFORM.md). The client is built on the
judge loop (:mod:`monitor.judge.runtime`) and reused by every invocation in the process. Its own
retries are off (`max_retries=0`): the engine's retry loop is the only one.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

from openai import AsyncAzureOpenAI, AsyncOpenAI, DefaultAioHttpClient

from monitor.config import JudgeConfig
from monitor.errors import JudgeFatalError
from monitor.judge.runtime import Runtime

COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
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

    @property
    def target(self) -> str:
        """Where requests go, for error messages."""
        return self.endpoint or "https://api.openai.com/v1"


def client_spec(judge: JudgeConfig, environ: dict[str, str] | None = None) -> ClientSpec:
    """Resolve the endpoint and the key source of a judge config. Raises JudgeFatalError when a named
    key setting is missing (nothing would work without it)."""
    env = os.environ if environ is None else environ
    key, source = _api_key(judge, env)
    if judge.provider == "azure_openai":
        endpoint, version = str(judge.endpoint), judge.api_version
    else:
        endpoint, version = judge.base_url or env.get("OPENAI_BASE_URL", ""), None
        if key is None:
            if not endpoint:
                raise JudgeFatalError(
                    "the openai judge has no API key: set OPENAI_API_KEY, or name the app setting "
                    "holding the key in judge.api_key_setting (or set judge.base_url for a local server)"
                )
            key, source = PLACEHOLDER_KEY, "placeholder"
    fingerprint = hashlib.sha256((key or "").encode()).hexdigest()[:16]
    return ClientSpec(judge.provider, endpoint, version, source, fingerprint, key)


def _api_key(judge: JudgeConfig, env: Any) -> tuple[str | None, str]:
    if judge.api_key_setting:
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
    """A client without retries on the aiohttp transport (a key, or an Entra token provider)."""
    http_client = DefaultAioHttpClient()
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
