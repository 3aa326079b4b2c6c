"""Where a webhook may be sent. By default only to public, globally routable addresses.

The host is resolved once, every address it resolves to is checked, and the request then
goes to the checked address itself (the Host header and TLS SNI carry the name), so a DNS
answer cannot change between the check and the connection (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# Ranges `is_global` lets through that still reach somewhere internal.
_BLOCKED_NETWORKS = [
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64: embeds an IPv4 address
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
    ipaddress.ip_network("2002::/16"),  # 6to4: embeds an IPv4 address
    ipaddress.ip_network("100.64.0.0/10"),  # CGNAT (is_global is False already; kept explicit)
]


class DestinationRefused(ValueError):
    """The URL may not be called; the message says why."""


@dataclass(frozen=True, slots=True)
class Destination:
    scheme: str
    host: str  # as written in the URL, for Host and SNI
    port: int
    address: str  # the checked IP to connect to
    path: str  # path and query

    def connect_url(self) -> str:
        literal = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def parse_ip_literal(host: str) -> IPAddress | None:
    """An IP written in any spelling a resolver would accept: 127.0.0.1, 2130706433,
    0x7f.1, 0177.0.0.1, [::1], ::ffff:127.0.0.1 … None when ``host`` is a name."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        # inet_aton takes the legacy decimal, octal and hex forms (and short forms like 127.1).
        packed = socket.inet_aton(text)
    except OSError:
        return None
    return ipaddress.IPv4Address(packed)


def address_refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if address.ipv4_mapped is not None:
            return f"{address} is an IPv4-mapped address ({mapped})"
        if any(address in net for net in _BLOCKED_NETWORKS):
            return f"{address} is in a translation range that reaches IPv4 addresses"
    elif any(address in net for net in _BLOCKED_NETWORKS):
        return f"{address} is in shared address space (100.64.0.0/10)"
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_private:
        return f"{address} is a private address"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return f"{address} is not a unicast public address"
    if not address.is_global:
        return f"{address} is not globally routable"
    return None


def check_url_shape(url: str) -> tuple[str, str, int, str]:
    """Scheme, host, port and path of a webhook URL; refuses anything but http(s) with a host."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DestinationRefused("the URL must start with http:// or https://")
    if not parts.hostname:
        raise DestinationRefused("the URL has no host")
    if parts.username or parts.password:
        raise DestinationRefused("the URL must not carry a user name or password")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise DestinationRefused("the URL has an invalid port") from exc
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, parts.hostname, port, path


def check_literal(url: str, *, allow_private: bool) -> None:
    """The checks that need no DNS: run when an endpoint is saved."""
    _, host, _, _ = check_url_shape(url)
    literal = parse_ip_literal(host)
    if literal is not None and not allow_private:
        reason = address_refusal(literal)
        if reason:
            raise DestinationRefused(f"webhook URLs must be public: {reason}")
    if not allow_private and host.lower().rstrip(".") in ("localhost", "localhost.localdomain"):
        raise DestinationRefused("webhook URLs must be public: localhost is a loopback name")


def resolve_destination(
    url: str, *, allow_private: bool, resolver: Resolver = system_resolver
) -> Destination:
    """Resolves and checks ``url``; the returned destination is what to connect to."""
    scheme, host, port, path = check_url_shape(url)
    literal = parse_ip_literal(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolver(host, port)
        except OSError as exc:
            raise DestinationRefused(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise DestinationRefused(f"{host} resolves to no address")
    if not allow_private:
        for text in addresses:
            reason = address_refusal(ipaddress.ip_address(text.split("%")[0]))
            if reason:
                raise DestinationRefused(f"webhook URLs must be public: {host} -> {reason}")
    return Destination(
        scheme=scheme, host=host, port=port, address=addresses[0].split("%")[0], path=path
    )
