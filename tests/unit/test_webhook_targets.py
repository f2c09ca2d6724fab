"""Safe targets: https in production, no loopback, private or link-local addresses
unless allowed, checked at registration and at every send."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhooks.targets import UnsafeTarget, check_registration, forbidden, resolve

REFUSED = [
    "http://127.0.0.1/hook",
    "http://localhost:8080/hook",
    "http://api.localhost/hook",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://[::1]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://0.0.0.0/",
]


@pytest.fixture
def strict(settings: Any) -> Any:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    settings.WEBHOOK_ALLOW_HTTP = True
    return settings


@pytest.mark.parametrize("url", REFUSED)
def test_non_public_targets_are_refused_at_registration(url: str, strict: Any) -> None:
    with pytest.raises(UnsafeTarget):
        check_registration(url)


@pytest.mark.parametrize("url", REFUSED[:-1])
def test_non_public_targets_are_refused_at_send_time(url: str, strict: Any) -> None:
    with pytest.raises(UnsafeTarget):
        resolve(url)


def test_loopback_is_allowed_when_the_setting_says_so(strict: Any) -> None:
    strict.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    check_registration("http://127.0.0.1:9000/hook")
    target = resolve("http://127.0.0.1:9000/hook?x=1")
    assert target.url == "http://127.0.0.1:9000/hook?x=1"
    assert target.host_header == "127.0.0.1:9000"


def test_a_public_address_is_accepted(strict: Any) -> None:
    check_registration("https://93.184.215.14/hooks")
    target = resolve("https://93.184.215.14/hooks")
    assert str(target.address) == "93.184.215.14" and target.port == 443


def test_http_is_refused_where_only_https_is_allowed(strict: Any) -> None:
    strict.WEBHOOK_ALLOW_HTTP = False
    with pytest.raises(UnsafeTarget, match="https"):
        check_registration("http://93.184.215.14/hooks")


@pytest.mark.parametrize(
    "url", ["ftp://93.184.215.14/", "https://user:pw@93.184.215.14/", "https:///x"]
)
def test_other_schemes_credentials_and_missing_hosts_are_refused(
    url: str, strict: Any
) -> None:
    with pytest.raises(UnsafeTarget):
        check_registration(url)


def test_a_host_that_does_not_resolve_fails_the_send(strict: Any) -> None:
    with pytest.raises(UnsafeTarget, match="does not resolve"):
        resolve("https://no-such-host.invalid/hook")


@given(st.ip_addresses())
def test_only_global_unicast_addresses_pass_without_the_setting(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    mapped = getattr(address, "ipv4_mapped", None) or address
    expected_ok = mapped.is_global and not mapped.is_multicast
    assert forbidden(address, allow_private=False) is not expected_ok
    assert forbidden(address, allow_private=True) is (
        mapped.is_multicast or mapped.is_unspecified
    )
