"""Outbound address policy (SSRF) shared by webhook deliveries and URL sources.

An API caller chooses the URLs the box connects to, and the box sits inside a company
network, so a URL must not become a way to reach loopback services, the link-local cloud
metadata endpoint or (for webhooks, unless the operator allows it) the intranet. The rules:

- A host is resolved **once**; every address it resolves to is checked, and the connection
  goes to the checked address (`PinnedHTTPConnection`, or `pinned_request` for httpx):
  DNS rebinding cannot slip another address between the check and the connect. TLS keeps
  the name for SNI and certificate checks, HTTP keeps it in `Host`.
- Every spelling of an address is the address: legacy inet_aton forms (`2130706433`,
  `0177.0.0.1`, `127.1`, `0x7f.1`), IPv6 literals with zone ids, and IPv4 addresses carried
  inside IPv6 (mapped `::ffff:`, compatible `::a.b.c.d`, NAT64 `64:ff9b::/96` and
  `64:ff9b:1::/48`, 6to4 `2002::/16`, Teredo `2001::/32`) are judged by the IPv4 inside.
  Python 3.11 calls `64:ff9b::7f00:1`, `2002:7f00:1::` and `::127.0.0.1` global; here they
  are loopback.
- Unspecified, multicast and metadata addresses are never reachable, whatever the setting.

This module does no I/O besides `getaddrinfo`; it is below every feature.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
from collections.abc import Collection
from typing import Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Kind = Literal["public", "private", "loopback", "link-local", "metadata", "unspecified", "multicast"]

# The kinds no setting makes reachable.
NEVER = frozenset({"metadata", "unspecified", "multicast"})
# Cloud metadata services (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba, Oracle).
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_LEGACY_V4 = re.compile(r"(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)


class Refused(Exception):
    """The destination is not allowed (or does not resolve); str(err) is fit for an operator."""


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without DNS (any spelling), or None for a DNS name."""
    host = host.strip().strip("[]").split("%")[0].rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_V4.fullmatch(host):
        try:  # what getaddrinfo and every browser-era resolver accept as IPv4
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    packed = int(ip)
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(packed & 0xFFFFFFFF)
    if packed >> 32 == 0 and packed > 1:  # ::a.b.c.d (deprecated "compatible" form)
        return ipaddress.IPv4Address(packed)
    return None


def classify(ip: IPAddress) -> Kind:
    """What kind of destination an address is; embedded IPv4 decides for IPv6 carriers."""
    if ip in METADATA:
        return "metadata"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            kind = classify(inner)
            if kind != "public":
                return kind
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if not ip.is_global:
        return "private"
    return "public"


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of host (a literal in any spelling, or a DNS name), resolved once."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise Refused(f"the host {host} does not resolve.") from None
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise Refused(f"the host {host} does not resolve.")
    return list(dict.fromkeys(found))


def pick_address(host: str, port: int, *, allow: Collection[str], setting: str) -> IPAddress:
    """Resolve once and return the address to connect to, or raise Refused.

    `allow` names the non-public kinds permitted (e.g. {"private"}); NEVER kinds are refused
    regardless. Every resolved address must pass, so a name cannot mix a public and a
    private record and hope the connect picks the second."""
    addresses = resolve(host, port)
    for ip in addresses:
        kind = classify(ip)
        if kind == "public":
            continue
        if kind in NEVER or kind not in allow:
            shown = host if str(ip) == host else f"{host} resolves to {ip}, which"
            raise Refused(f"{shown} is a {kind} address, refused by this server ({setting}).")
    return addresses[0]


def is_public(ip: IPAddress) -> bool:
    return classify(ip) == "public"


class PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to `address`, with `host` kept for the Host header."""

    def __init__(self, host: str, port: int | None, *, address: IPAddress, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def _open(self) -> socket.socket:
        sock = socket.create_connection((str(self.address), self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def connect(self) -> None:
        self.sock = self._open()


class PinnedHTTPSConnection(PinnedHTTPConnection):
    """HTTPS to `address`; SNI and certificate checks use the name."""

    default_port = http.client.HTTPS_PORT

    def __init__(
        self,
        host: str,
        port: int | None,
        *,
        address: IPAddress,
        timeout: float,
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(host, port, address=address, timeout=timeout)
        self.context = context

    def connect(self) -> None:
        self.sock = self.context.wrap_socket(self._open(), server_hostname=self.host)
