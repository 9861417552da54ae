"""The outbound policy (monitor/outbound.py): URLs, resolved addresses, tokens and key settings."""

from __future__ import annotations

import ipaddress

import pytest

from monitor.outbound import OutboundError, OutboundPolicy, OutboundRefusedError, literal_address

LOCAL = OutboundPolicy()
AZURE = OutboundPolicy(in_azure=True)


@pytest.mark.parametrize("url", [
    "https://my-aoai.openai.azure.com", "https://api.openai.com/v1", "https://10.0.0.5/v1",
    "https://judge.internal.contoso.com:8443/v1", "http://127.0.0.1:8000/v1", "http://localhost:11434/v1",
    "http://[::1]:8000/v1", "https://127.0.0.1/v1",
])
def test_accepted_locally(url: str) -> None:
    LOCAL.check_url(url, "f")


@pytest.mark.parametrize(("url", "message"), [
    ("http://169.254.169.254/latest/meta-data", "metadata"),
    ("https://169.254.169.254/", "metadata"),
    ("https://[fd00:ec2::254]/", "metadata"),
    ("https://168.63.129.16/", "metadata"),
    ("https://100.100.100.200/", "metadata"),
    ("https://169.254.1.2/", "link-local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://[::ffff:169.254.169.254]/", "metadata"),
    ("https://[64:ff9b::a9fe:a9fe]/", "metadata"),
    ("https://[2002:a9fe:a9fe::1]/", "metadata"),
    ("https://2852039166/", "metadata"),
    ("https://0xA9FEA9FE/", "metadata"),
    ("https://0251.0376.0251.0376/", "metadata"),
    ("https://169.254.43518/", "metadata"),
    ("https://0.0.0.0/", "routable"),
    ("https://[::]/", "routable"),
    ("https://224.0.0.1/", "routable"),
    ("https://metadata.google.internal/", "metadata"),
    ("http://judge.example.com/v1", "https"),
    ("http://10.0.0.5/v1", "https"),
    ("ftp://judge.example.com/", "https"),
    ("file:///etc/passwd", "https"),
    ("https:///v1", "https"),
    ("https://user:secret@judge.example.com/", "credentials"),
    ("https://169\u3002254\u3002169\u3002254/", "metadata"),
    ("https://\uff11\uff16\uff19.254.169.254/", "metadata"),
    ("https://%31%36%39.254.169.254/", "valid host"),
    ("https://[fe80::1%25eth0]/", "valid host"),
    ("https://judge.example.com:99999/", "valid URL"),
])
def test_refused_everywhere(url: str, message: str) -> None:
    for policy in (LOCAL, AZURE):
        with pytest.raises(OutboundError, match=message) as caught:
            policy.check_url(url, "judge.base_url")
        assert caught.value.details == [{"field": "judge.base_url", "message": caught.value.details[0]["message"]}]


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/v1", "https://localhost/v1", "https://[::1]/",
                                 "https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/",
                                 "https://127.1.2.3/", "https://x.localhost/", "https://2130706433/"])
def test_loopback_is_refused_in_azure(url: str) -> None:
    with pytest.raises(OutboundError, match="loopback"):
        AZURE.check_url(url, "f")


def test_the_allow_list_narrows_every_host() -> None:
    policy = OutboundPolicy(allowed_hosts=("my-aoai.openai.azure.com", "*.contoso.com"))
    policy.check_url("https://my-aoai.openai.azure.com/", "f")
    policy.check_url("https://hooks.eu.contoso.com/x", "f")
    for url in ("https://other.openai.azure.com/", "https://contoso.com.evil.example/", "http://127.0.0.1:1/"):
        with pytest.raises(OutboundError, match="OUTBOUND_ALLOWED_HOSTS"):
            policy.check_url(url, "f")


def test_resolved_addresses_are_checked() -> None:
    for address in ("169.254.169.254", "fd00:ec2::254", "fe80::1", "::ffff:169.254.169.254", "0.0.0.0"):
        with pytest.raises(OutboundRefusedError, match="request refused"):
            LOCAL.check_address("judge.example.test", ipaddress.ip_address(address))
    LOCAL.check_address("judge.example.test", ipaddress.ip_address("127.0.0.1"))
    LOCAL.check_address("judge.example.test", ipaddress.ip_address("10.1.2.3"))
    with pytest.raises(OutboundRefusedError, match="loopback"):
        AZURE.check_address("judge.example.test", ipaddress.ip_address("127.0.0.1"))


def test_tokens_go_to_azure_ai_hosts_only() -> None:
    assert AZURE.token_allowed("https://x.openai.azure.com")
    assert AZURE.token_allowed("https://x.cognitiveservices.azure.com/")
    assert AZURE.token_allowed("https://x.services.ai.azure.com/")
    assert not AZURE.token_allowed("https://openai.azure.com.evil.example/")
    assert not AZURE.token_allowed("https://evil.example/?x=.openai.azure.com")
    assert LOCAL.token_allowed("http://127.0.0.1:8000") and not AZURE.token_allowed("http://127.0.0.1:8000")
    assert OutboundPolicy(allowed_hosts=("aoai.internal.contoso.com",)).token_allowed("https://aoai.internal.contoso.com")
    assert not OutboundPolicy(allowed_hosts=("*.contoso.com",)).token_allowed("https://aoai.contoso.com")


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "JUDGE_KEY_PRIMARY", "JUDGE_KEY_"])
def test_judge_key_settings_accepted(name: str) -> None:
    LOCAL.check_key_setting(name)


@pytest.mark.parametrize("name", ["MONITOR_STORAGE", "MDC_STORAGE", "MONITOR_API_KEY", "monitor_api_key",
                                  "MONITOR_STORAGE__credential", "MDC_STORAGE__blobServiceUri", "AzureWebJobsStorage",
                                  "AZUREWEBJOBSSTORAGE", "APPLICATIONINSIGHTS_CONNECTION_STRING",
                                  "WEBSITE_AUTH_ENCRYPTION_KEY",
                                  "IDENTITY_HEADER", "MSI_SECRET", "AZURE_CLIENT_SECRET", "OUTBOUND_ALLOWED_HOSTS"])
def test_forbidden_settings_stay_forbidden_even_when_listed(name: str) -> None:
    with pytest.raises(OutboundError, match="never be named"):
        OutboundPolicy(extra_key_settings=frozenset({name})).check_key_setting(name)


def test_other_settings_need_the_allow_list() -> None:
    with pytest.raises(OutboundError, match="JUDGE_KEY_SETTINGS"):
        LOCAL.check_key_setting("PATH")
    OutboundPolicy(extra_key_settings=frozenset({"LLM_KEY"})).check_key_setting("LLM_KEY")


def test_literal_addresses_in_every_spelling() -> None:
    assert literal_address("2852039166") == ipaddress.ip_address("169.254.169.254")
    assert literal_address("[::1]") == ipaddress.ip_address("::1")
    assert literal_address("judge.example.com") is None
