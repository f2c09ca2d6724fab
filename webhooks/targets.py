"""Where a webhook may be sent: checked when an endpoint is registered and again on
every send, against the addresses its host resolves to then (DNS can change)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(ValueError):
    """The URL may not receive webhooks here (scheme, host or address)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    # The checked address the request goes to: never re-resolved after the check.
    address: IPAddress

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def forbidden(address: IPAddress, *, allow_private: bool) -> bool:
    """Multicast and unspecified addresses never; anything not globally routable
    (loopback, private, link-local, shared, reserved) unless `allow_private`."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_multicast or address.is_unspecified:
        return True
    return not allow_private and not address.is_global


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an acceptable URL, else UnsafeTarget."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"Not a valid URL: {exc}.") from None
    allowed = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeTarget(f"The URL must be {' or '.join(allowed)}.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("The URL must not hold credentials.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeTarget("The URL has no host.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def addresses(host: str, port: int) -> list[IPAddress]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeTarget(f"The host {host!r} does not resolve: {exc}.") from None
    # The scope of a link-local IPv6 address ("fe80::1%eth0") is not part of it.
    return list(
        dict.fromkeys(
            ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos
        )
    )


def check_registration(url: str) -> None:
    """At registration: the scheme and host, and the host's addresses if it resolves
    (one that does not resolve yet is checked again at every send)."""
    _scheme, host, port, _path = parse(url)
    allow = settings.WEBHOOK_ALLOW_PRIVATE_TARGETS
    loopback_name = host.lower() == "localhost" or host.lower().endswith(".localhost")
    if loopback_name and not allow:
        raise UnsafeTarget("Loopback hosts may not receive webhooks.")
    literal = _literal(host)
    found = [literal] if literal is not None else _resolved_or_empty(host, port)
    for address in found:
        if forbidden(address, allow_private=allow):
            raise UnsafeTarget(
                f"The host resolves to {address}, a loopback, private, link-local or "
                "otherwise non-public address (WEBHOOK_ALLOW_PRIVATE_TARGETS)."
            )


def _resolved_or_empty(host: str, port: int) -> list[IPAddress]:
    try:
        return addresses(host, port)
    except UnsafeTarget:
        return []


def resolve(url: str) -> Target:
    """At send time: every address the host resolves to must be allowed (one bad
    address refuses the whole host); the request goes to the first one."""
    scheme, host, port, path = parse(url)
    found = addresses(host, port)
    allow = settings.WEBHOOK_ALLOW_PRIVATE_TARGETS
    bad = [a for a in found if forbidden(a, allow_private=allow)]
    if bad or not found:
        raise UnsafeTarget(
            f"Refused: {host} resolves to {bad[0] if bad else 'nothing'}, not a "
            "public address (WEBHOOK_ALLOW_PRIVATE_TARGETS)."
        )
    return Target(scheme, host, port, path, found[0])
