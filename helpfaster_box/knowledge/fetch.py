"""Fetch an intranet page for a `url` knowledge source.

The appliance sits inside a company network, so an open fetcher would let any API caller probe
internal services (SSRF). Only hosts the operator listed in `url_allowed_hosts` are reachable,
and every redirect hop is checked again, because an allowed host may redirect anywhere.

An allowed name is then resolved once (helpfaster_box.net) and the request goes to that
address (Host and TLS SNI keep the name), so DNS rebinding cannot swap the address after the
check. Intranet (private) addresses are what this is for and are allowed; a name resolving to
loopback or link-local is refused, and only an entry that is the address itself
(`127.0.0.1:8000`) reaches it. Metadata, unspecified and multicast addresses never are.
"""

from __future__ import annotations

import time

import httpx

from helpfaster_box import net

MAX_REDIRECTS = 5
SETTING = "list the address itself in url_allowed_hosts to allow it"
NAMED_KINDS = frozenset({"private"})  # what an allow-listed *name* may resolve to
LITERAL_KINDS = frozenset({"private", "loopback", "link-local"})  # an allow-listed address
_USER_AGENT = "HelpFaster-Box/0.1 (knowledge ingestion)"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class FetchError(Exception):
    """The URL cannot be fetched; str(err) is a short reason for the operator."""


def host_allowed(host: str, port: int | None, scheme: str, allowed_hosts: list[str]) -> bool:
    """Exact host match, or "*.corp.example" for any subdomain; "host:port" pins a port."""
    host = host.lower().rstrip(".")
    port = port or _DEFAULT_PORTS.get(scheme)
    for entry in allowed_hosts:
        name, wanted_port = _split_entry(entry.strip().lower())
        if wanted_port is not None and wanted_port != port:
            continue
        if name.startswith("*."):
            if host.endswith(name[1:]) and len(host) > len(name) - 1:
                return True
        elif name and host == name:
            return True
    return False


def _split_entry(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # IPv6 literal, optionally with a port: [::1]:8080
        name, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        name, port = entry.split(":")
    else:
        name, port = entry, ""
    return name.rstrip("."), int(port) if port.isdigit() else None


def check_url(url: str, allowed_hosts: list[str]) -> httpx.URL:
    """Validate a URL against the allow list without any network access (usable at submit)."""
    if not allowed_hosts:
        raise FetchError(
            "fetching URLs is disabled: add the host to the `url_allowed_hosts` setting to allow it"
        )
    try:
        parsed = httpx.URL(url)
    except Exception:
        raise FetchError(f"not a valid URL: {url[:200]!r}") from None
    if parsed.scheme not in ("http", "https"):
        raise FetchError(
            f"only http and https URLs can be fetched, not {parsed.scheme or '(none)'}: {url[:200]}"
        )
    if not parsed.host:
        raise FetchError(f"URL has no host: {url[:200]}")
    if not host_allowed(parsed.host, parsed.port, parsed.scheme, allowed_hosts):
        raise FetchError(f"host {parsed.host!r} is not in the `url_allowed_hosts` setting")
    return parsed


def fetch_url(
    url: str,
    *,
    allowed_hosts: list[str],
    max_bytes: int,
    timeout_s: float,
) -> tuple[bytes, str | None, str]:
    """GET url; returns (body, content type, final URL after redirects) or raises FetchError.

    timeout_s caps the whole fetch, redirects included, not each socket operation.
    """
    current = check_url(url, allowed_hosts)
    deadline = time.monotonic() + timeout_s
    # trust_env=False: proxy variables meant for the installer must not reroute intranet fetches.
    headers = {"user-agent": _USER_AGENT, "accept-encoding": "identity"}
    with httpx.Client(follow_redirects=False, trust_env=False, headers=headers) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            pinned, extra = _pin(current)
            try:
                with client.stream(
                    "GET",
                    pinned,
                    headers=extra,
                    extensions={"sni_hostname": current.host},
                    timeout=_remaining(deadline, timeout_s),
                ) as resp:
                    if resp.is_redirect:
                        location = resp.headers["location"]
                        current = check_url(str(current.join(location)), allowed_hosts)
                        continue
                    if not resp.is_success:
                        raise FetchError(f"{current} answered HTTP {resp.status_code}")
                    return (
                        _read_body(resp, max_bytes, deadline, timeout_s),
                        resp.headers.get("content-type"),
                        str(current),
                    )
            except httpx.TimeoutException:
                raise FetchError(f"timed out after {timeout_s:g} s fetching {current}") from None
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                detail = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
                raise FetchError(f"could not fetch {current}: {detail}") from None
    raise FetchError(f"too many redirects (more than {MAX_REDIRECTS}) starting at {url[:200]}")


def _pin(url: httpx.URL) -> tuple[httpx.URL, dict[str, str]]:
    """The URL with its host replaced by the one address it resolved to, and the Host header."""
    port = url.port or _DEFAULT_PORTS[url.scheme]
    allow = LITERAL_KINDS if net.literal_address(url.host) is not None else NAMED_KINDS
    try:
        address = net.pick_address(url.host, port, allow=allow, setting=SETTING)
    except net.Refused as exc:
        raise FetchError(str(exc)) from None
    return url.copy_with(host=str(address)), {"host": url.netloc.decode("ascii")}


def _remaining(deadline: float, timeout_s: float) -> httpx.Timeout:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(f"timed out after {timeout_s:g} s")
    return httpx.Timeout(left)


def _read_body(resp: httpx.Response, max_bytes: int, deadline: float, timeout_s: float) -> bytes:
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"page is larger than the {max_bytes} byte limit ({declared} bytes)")
    body = bytearray()
    for piece in resp.iter_bytes():
        body += piece
        if len(body) > max_bytes:
            raise FetchError(f"page is larger than the {max_bytes} byte limit")
        # Per-read timeouts alone let a server that trickles bytes hold us forever.
        if time.monotonic() > deadline:
            raise FetchError(f"timed out after {timeout_s:g} s fetching {resp.url}")
    return bytes(body)
