"""A hostile monitor config cannot make the app send its secrets, its API key or its Entra token to a
server of the caller's choosing (docs/security.md).

Each test points a config at a loopback server the test runs (the OpenAI-compatible fake, or the
webhook receiver) and asserts that the server saw no request carrying a secret: the config is refused
when stored (422 naming the field) and, for configs stored by other means, refused again when used.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.aggregate.webhook import deliver
from monitor.config import MonitorConfig
from monitor.errors import JudgeFatalError
from monitor.judge import JudgeEngine, JudgeTask, RetryPolicy
from monitor.judge.runtime import reset_runtime
from monitor.records import Record
from monitor.settings import get_settings, reset_settings
from tests.support.fake_openai import FakeOpenAI
from tests.support.webhook import WebhookReceiver

FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)
STORAGE_SECRET = "DefaultEndpointsProtocol=https;AccountName=victim;AccountKey=c2VjcmV0LWFjY291bnQta2V5;"
API_KEY = "the-monitor-api-key"
FORBIDDEN = ["MONITOR_STORAGE", "MDC_STORAGE", "MONITOR_API_KEY", "AzureWebJobsStorage",
             "APPLICATIONINSIGHTS_CONNECTION_STRING", "MONITOR_STORAGE__blobServiceUri", "WEBSITE_AUTH_ENCRYPTION_KEY",
             "AZURE_CLIENT_SECRET", "PATH", "HOME"]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
    reset_runtime()


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's own secrets, present in the environment as in Azure."""
    monkeypatch.setenv("MONITOR_API_KEY", API_KEY)
    monkeypatch.setenv("AzureWebJobsStorage", STORAGE_SECRET)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", STORAGE_SECRET)
    reset_settings()
    yield
    reset_settings()


@pytest.fixture
def in_azure(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "0123456789abcdef")
    reset_settings()
    yield
    monkeypatch.delenv("WEBSITE_INSTANCE_ID")
    reset_settings()


def config(judge: dict[str, Any], **extra: Any) -> MonitorConfig:
    return MonitorConfig.model_validate({"name": "hostile", "source": {"prefix": "p/"},
                                         "judge": {"explain": "off", **judge}, **extra})


def record() -> Record:
    from datetime import UTC, datetime

    return Record(monitor="hostile", key="r1", time=datetime(2026, 11, 28, tzinfo=UTC), prompt="q", completion="a")


def judge_once(cfg: MonitorConfig) -> None:
    JudgeEngine(cfg, retry=FAST).judge([JudgeTask(record(), "coherence")])


def leaked(fake: FakeOpenAI, *values: str) -> list[str]:
    """Secrets found in any request the fake server received (headers or body)."""
    found = []
    for request in fake.stats.requests_log:
        text = f"{request.headers} {request.body}"
        found += [v for v in values if v in text]
    return found


# --- judge.api_key_setting ------------------------------------------------------------------------
@pytest.mark.parametrize("setting", FORBIDDEN)
def test_a_config_naming_a_non_judge_setting_sends_nothing(fake: FakeOpenAI, secrets: None, setting: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_STORAGE", STORAGE_SECRET)
    monkeypatch.setenv("MDC_STORAGE", STORAGE_SECRET)
    cfg = config({"provider": "openai", "model": "m", "base_url": fake.openai_base_url, "api_key_setting": setting})
    with pytest.raises(JudgeFatalError, match="api_key_setting"):
        judge_once(cfg)
    assert fake.stats.requests == 0
    assert not leaked(fake, STORAGE_SECRET, API_KEY)


def test_judge_key_settings_are_the_documented_ones(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A JUDGE_KEY_* setting, OPENAI_API_KEY and a setting listed in JUDGE_KEY_SETTINGS reach the judge;
    an unlisted one does not, and the allow-list cannot re-open a forbidden name."""
    for name in ("JUDGE_KEY_PRIMARY", "OPENAI_API_KEY", "MY_LLM_KEY"):
        monkeypatch.setenv(name, f"value-of-{name}")
    monkeypatch.setenv("JUDGE_KEY_SETTINGS", "MY_LLM_KEY, MONITOR_API_KEY")
    monkeypatch.setenv("MONITOR_API_KEY", API_KEY)
    reset_settings()
    for name in ("JUDGE_KEY_PRIMARY", "OPENAI_API_KEY", "MY_LLM_KEY"):
        judge_once(config({"provider": "openai", "model": "m", "base_url": fake.openai_base_url,
                           "api_key_setting": name}))
        assert fake.stats.requests_log[-1].headers["authorization"] == f"Bearer value-of-{name}"
    before = fake.stats.requests
    for name in ("OTHER_SETTING", "MONITOR_API_KEY"):
        with pytest.raises(JudgeFatalError, match="not a judge key setting"):
            judge_once(config({"provider": "openai", "model": "m", "base_url": fake.openai_base_url,
                               "api_key_setting": name}))
    assert fake.stats.requests == before and not leaked(fake, API_KEY)
    reset_settings()


# --- endpoints and tokens ---------------------------------------------------------------------------
def test_in_azure_a_loopback_judge_is_never_called(fake: FakeOpenAI, secrets: None, in_azure: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_KEY_X", "judge-key")
    for judge in ({"provider": "openai", "model": "m", "base_url": fake.openai_base_url,
                   "api_key_setting": "JUDGE_KEY_X"},
                  {"provider": "azure_openai", "endpoint": fake.azure_endpoint, "deployment": "d"}):
        with pytest.raises(JudgeFatalError, match="loopback"):
            judge_once(config(judge))
    assert fake.stats.requests == 0


def test_an_entra_token_goes_only_to_azure_ai_hosts(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """azure_openai without a key setting means Entra ID: the token is never obtained for, let alone
    sent to, a host that is not Azure AI (here a name that resolves to the test's loopback server)."""
    port = fake.azure_endpoint.rsplit(":", 1)[1].rstrip("/")
    _resolve(monkeypatch, {"attacker.example.test": "127.0.0.1"})
    reset_settings()
    cfg = config({"provider": "azure_openai", "endpoint": f"https://attacker.example.test:{port}", "deployment": "d"})
    with pytest.raises(JudgeFatalError, match="Entra ID token"):
        judge_once(cfg)
    assert fake.stats.requests == 0


def test_the_host_allow_list_applies_to_the_judge(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_ALLOWED_HOSTS", "my-aoai.openai.azure.com,*.contoso.com")
    reset_settings()
    with pytest.raises(JudgeFatalError, match="OUTBOUND_ALLOWED_HOSTS"):
        judge_once(config({"provider": "openai", "model": "m", "base_url": fake.openai_base_url}))
    assert fake.stats.requests == 0
    monkeypatch.setenv("OUTBOUND_ALLOWED_HOSTS", "127.0.0.1")
    reset_settings()
    judge_once(config({"provider": "openai", "model": "m", "base_url": fake.openai_base_url}))
    assert fake.stats.requests == 1
    reset_settings()


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "169.254.10.1", "168.63.129.16"])
def test_a_name_resolving_to_a_metadata_address_is_refused_when_connecting(
        fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    """The URL passes the checks made when the config is stored (a public-looking name); the address
    it resolves to when the judge is called is refused, before any connection, and the batch stops."""
    monkeypatch.setenv("JUDGE_KEY_X", "judge-key")
    reset_settings()
    calls = _resolve(monkeypatch, {"judge.example.test": address})
    cfg = config({"provider": "openai", "model": "m", "base_url": "https://judge.example.test/v1",
                  "api_key_setting": "JUDGE_KEY_X"})
    with pytest.raises(JudgeFatalError, match=f"resolves to {address}"):
        judge_once(cfg)
    assert calls == ["judge.example.test"]


# --- webhooks ---------------------------------------------------------------------------------------
def test_in_azure_a_webhook_to_loopback_is_not_posted(in_azure: None) -> None:
    with WebhookReceiver() as hook:
        result = deliver(hook.url, {"alert": 1}, attempts=3, timeout=2, backoff=0)
        assert (result.status, result.attempts) == ("failed", 1) and "refused" in result.error
        assert hook.requests == []


def test_a_webhook_name_resolving_to_metadata_is_not_posted(monkeypatch: pytest.MonkeyPatch) -> None:
    with WebhookReceiver() as hook:
        port = hook.url.split(":")[2].split("/")[0]
        _resolve(monkeypatch, {"hooks.example.test": "169.254.169.254"})
        result = deliver(f"http://hooks.example.test:{port}/hook", {"a": 1}, attempts=3, timeout=2, backoff=0)
        assert result.status == "failed" and "refused" in result.error
        result = deliver(f"https://hooks.example.test:{port}/hook", {"a": 1}, attempts=3, timeout=2, backoff=0)
        assert (result.status, result.attempts) == ("failed", 1) and "169.254.169.254" in result.error
        assert hook.requests == []


def test_a_webhook_redirect_is_not_followed() -> None:
    with WebhookReceiver() as target, WebhookReceiver() as hook:
        hook.redirect_to = target.url
        result = deliver(hook.url, {"a": 1}, attempts=3, timeout=5, backoff=0)
        assert (result.status, result.attempts) == ("failed", 1) and "redirect" in result.error
        assert target.requests == []


def test_a_judge_redirect_is_not_followed(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A redirect would carry the key header to another host: it is not followed (and stops the batch)."""
    from tests.support.fake_openai import Reply

    monkeypatch.setenv("JUDGE_KEY_X", "judge-key")
    with FakeOpenAI() as other:
        fake.script(Reply(status=307, headers={"Location": f"{other.openai_base_url}/chat/completions"},
                          error={"code": "moved", "message": "moved"}))
        with pytest.raises(JudgeFatalError, match="307"):
            judge_once(config({"provider": "openai", "model": "m", "base_url": fake.openai_base_url,
                               "api_key_setting": "JUDGE_KEY_X"}))
        assert other.stats.requests == 0 and fake.stats.requests == 1


def test_locally_a_loopback_webhook_still_works() -> None:
    with WebhookReceiver() as hook:
        assert deliver(hook.url, {"a": 1}, attempts=1, timeout=5, backoff=0).status == "sent"
        assert hook.bodies == [{"a": 1}]


# --- the API refuses such configs when they are stored ---------------------------------------------
@pytest.mark.azurite
@pytest.mark.parametrize(("judge", "alerts", "field", "message"), [
    ({"provider": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "api_key_setting": "MONITOR_STORAGE"},
     {}, "judge.api_key_setting", "not a judge key setting"),
    ({"provider": "openai", "model": "m", "api_key_setting": "MONITOR_API_KEY"}, {}, "judge.api_key_setting",
     "never be named"),
    ({"provider": "openai", "model": "m", "api_key_setting": "SOME_OTHER_SETTING"}, {}, "judge.api_key_setting",
     "JUDGE_KEY_"),
    ({"provider": "openai", "model": "m", "base_url": "http://169.254.169.254/v1"}, {}, "judge.base_url", "metadata"),
    ({"provider": "openai", "model": "m", "base_url": "https://[fd00:ec2::254]/v1"}, {}, "judge.base_url", "metadata"),
    ({"provider": "openai", "model": "m", "base_url": "https://0xA9FEA9FE/v1"}, {}, "judge.base_url", "metadata"),
    ({"provider": "openai", "model": "m", "base_url": "https://[::ffff:169.254.169.254]/"}, {}, "judge.base_url",
     "metadata"),
    ({"provider": "openai", "model": "m", "base_url": "http://judge.example.com/v1"}, {}, "judge.base_url", "https"),
    ({"provider": "openai", "model": "m", "base_url": "https://user:pw@judge.example.com/v1"}, {}, "judge.base_url",
     "credentials"),
    ({"provider": "azure_openai", "endpoint": "https://evil.example.com", "deployment": "d"}, {}, "judge.endpoint",
     "Entra ID token"),
    ({"provider": "heuristic"}, {"webhook_url": "http://[fe80::1]/hook"}, "alerts.webhook_url", "link-local"),
    ({"provider": "heuristic"}, {"webhook_url": "http://hooks.example.com/x"}, "alerts.webhook_url", "https"),
    ({"provider": "heuristic"}, {"webhook_url": "https://metadata.google.internal/x"}, "alerts.webhook_url",
     "metadata"),
])
def test_the_api_refuses_hostile_configs_naming_the_field(api: TestClient, judge: dict[str, Any],
                                                          alerts: dict[str, Any], field: str, message: str) -> None:
    body = {"source": {"prefix": "p/"}, "judge": judge, "alerts": alerts}
    response = api.put("/api/monitors/hostile-config", json=body)
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert [d["field"] for d in details] == [field]
    assert message in details[0]["message"]
    assert api.get("/api/monitors/hostile-config").status_code == 404


@pytest.mark.azurite
def test_in_azure_the_api_refuses_loopback_urls(api: TestClient, in_azure: None) -> None:
    body = {"source": {"prefix": "p/"}, "alerts": {"webhook_url": "http://127.0.0.1:8080/hook"}}
    response = api.put("/api/monitors/hostile-config", json=body)
    assert response.status_code == 422 and "loopback" in response.text
    assert get_settings().in_azure


def _resolve(monkeypatch: pytest.MonkeyPatch, names: dict[str, str]) -> list[str]:
    """Make `socket.getaddrinfo` answer `names` (test-only DNS); returns the names looked up."""
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host in names:
            looked_up.append(host)
            return real(names[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up
