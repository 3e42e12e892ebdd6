"""Fetch user-supplied URLs safely: public addresses only, pinned connections, capped bodies."""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

import certifi
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)

logger = logging.getLogger(__name__)

REASON_URL = "url"
REASON_SCHEME = "scheme"
REASON_ADDRESS = "address"
REASON_TOO_LARGE = "too_large"
REASON_TIMEOUT = "timeout"
REASON_REDIRECTS = "redirects"
REASON_HTTP_STATUS = "http_status"
REASON_CONNECT = "connect"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_MAX_URL_LENGTH = 8192
_ASCII_PRINTABLE = "".join(chr(code) for code in range(33, 127))
# With no total bound, a server dripping one byte per read-timeout could hold a
# worker forever; by default a whole fetch gets this many times `timeout`.
_TOTAL_TIMEOUT_FACTOR = 4

# Ranges refused on top of ipaddress's own flags, spelled out so the policy does
# not shift with the Python version's idea of "global".
_BLOCKED_NETWORKS_V4 = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches localhost on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, incl. cloud metadata 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. broadcast
    )
)
_BLOCKED_NETWORKS_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "::/128",
        "::1/128",
        "::/96",  # deprecated IPv4-compatible addresses
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, ...)
        "2001:db8::/32",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class FetchedDocument:
    """A fetched response body and what is known about it."""

    body: bytes
    content_type: str | None
    final_url: str


class FetchError(Exception):
    """A URL could not be fetched; `reason` is a short machine code, str() is for humans."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str  # ASCII hostname or bare IP literal
    port: int
    path: str  # path plus query, as sent in the request line
    host_header: str


def resolve_host(host: str, port: int) -> list[str]:
    """Resolve host to its IP addresses; the only name resolution this module does."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def is_public_address(ip: str) -> bool:
    """Return True only for a globally routable unicast address."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        # IPv6 forms that embed an IPv4 address are judged by that address.
        if addr.ipv4_mapped is not None:
            return is_public_address(str(addr.ipv4_mapped))
        if addr in _NAT64:
            return is_public_address(str(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)))
        if addr.sixtofour is not None and not is_public_address(str(addr.sixtofour)):
            return False
        blocked: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = _BLOCKED_NETWORKS_V6
    else:
        blocked = _BLOCKED_NETWORKS_V4
    if any(addr in net for net in blocked):
        return False
    return addr.is_global and not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    )


def _parse_target(url: str) -> _Target:
    if not isinstance(url, str) or not url or len(url) > _MAX_URL_LENGTH:
        raise FetchError(REASON_URL, "the URL is empty or too long")
    # http.client would refuse these too, but a clear early error beats a crash.
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise FetchError(REASON_URL, "the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        hostname = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise FetchError(REASON_URL, f"the URL is malformed: {exc}") from None
    if scheme not in _DEFAULT_PORTS:
        shown = f"{scheme}:" if scheme else "a relative URL"
        raise FetchError(REASON_SCHEME, f"only http and https URLs can be fetched, not {shown}")
    if "@" in parts.netloc:
        raise FetchError(REASON_URL, "URLs with a user name or password are refused")
    hostname = (hostname or "").rstrip(".")
    if not hostname:
        raise FetchError(REASON_URL, "the URL has no host")
    if not _is_ip_literal(hostname):
        try:
            hostname = hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise FetchError(REASON_URL, "the URL's host name is not valid") from None
    port = port or _DEFAULT_PORTS[scheme]
    bracketed = f"[{hostname}]" if ":" in hostname else hostname
    host_header = bracketed if port == _DEFAULT_PORTS[scheme] else f"{bracketed}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # The request line is ASCII: percent-encode anything else, leave ASCII alone.
    path = quote(path, safe=_ASCII_PRINTABLE)
    return _Target(url, scheme, hostname, port, path, host_header)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _vetted_addresses(target: _Target, *, allow_private: bool) -> list[str]:
    if _is_ip_literal(target.host):
        addresses = [target.host]
    else:
        try:
            addresses = resolve_host(target.host, target.port)
        except OSError as exc:
            raise FetchError(REASON_CONNECT, f"cannot resolve {target.host}: {exc}") from None
        if not addresses:
            raise FetchError(REASON_CONNECT, f"{target.host} has no addresses")
    if not allow_private:
        # One private answer is enough to refuse: the attacker controls the
        # order of DNS answers, so "use the public one" is not a defence.
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            logger.info("refused %s: resolves to non-public %s", target.host, refused[0])
            raise FetchError(
                REASON_ADDRESS,
                f"{target.host} resolves to a non-public address ({refused[0]})",
            )
    return addresses


def vet_url(url: str, *, allow_private: bool) -> None:
    """Raise FetchError unless url is an http(s) URL whose host resolves to allowed addresses."""
    _vetted_addresses(_parse_target(url), allow_private=allow_private)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # certifi, as requests uses, so slim images without a system CA store work.
    return ssl.create_default_context(cafile=certifi.where())


def _open(
    target: _Target,
    ip: str,
    *,
    timeout: float,
    headers: dict[str, str],
    method: str = "GET",
    body: bytes | None = None,
) -> tuple[urllib3.HTTPConnectionPool, urllib3.BaseHTTPResponse]:
    """Send the request to the already vetted ip, keeping Host and SNI on the real name."""
    pool: urllib3.HTTPConnectionPool
    limits = urllib3.Timeout(connect=timeout, read=timeout)
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            ip,
            target.port,
            timeout=limits,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ssl_context=_ssl_context(),
            # Certificate and SNI are checked against the URL's name, not the IP.
            server_hostname=target.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(ip, target.port, timeout=limits, retries=False, maxsize=1)
    try:
        response = pool.urlopen(
            method,
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
        )
    except BaseException:
        pool.close()
        raise
    return pool, response


def _connect(
    target: _Target,
    addresses: list[str],
    *,
    timeout: float,
    headers: dict[str, str],
    method: str = "GET",
    body: bytes | None = None,
) -> tuple[urllib3.HTTPConnectionPool, urllib3.BaseHTTPResponse]:
    failure: FetchError | None = None
    for ip in addresses:
        try:
            return _open(target, ip, timeout=timeout, headers=headers, method=method, body=body)
        except NewConnectionError as exc:  # subclass of ConnectTimeoutError: check first
            failure = FetchError(REASON_CONNECT, f"cannot connect to {target.host}: {exc}")
        except ConnectTimeoutError:
            failure = FetchError(REASON_TIMEOUT, f"connecting to {target.host} timed out")
        except ReadTimeoutError:
            raise FetchError(REASON_TIMEOUT, f"{target.host} did not answer in time") from None
        except SSLError as exc:
            raise FetchError(REASON_CONNECT, f"TLS with {target.host} failed: {exc}") from None
        except (HTTPError, OSError) as exc:
            raise FetchError(REASON_CONNECT, f"request to {target.host} failed: {exc}") from None
        # Only connection failures fall through to the next address.
    assert failure is not None  # addresses is never empty
    raise failure


def _read_capped(
    response: urllib3.BaseHTTPResponse, target: _Target, *, max_bytes: int, deadline: float
) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise FetchError(
            REASON_TOO_LARGE, f"{target.host} sends {declared} bytes; the limit is {max_bytes}"
        )
    body = bytearray()
    try:
        while True:
            # read1 returns what has arrived instead of waiting for a full chunk,
            # so a server dripping bytes still meets the deadline check below.
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            body += chunk
            # Counted as received: Content-Length may be absent or wrong.
            if len(body) > max_bytes:
                raise FetchError(
                    REASON_TOO_LARGE, f"the response from {target.host} exceeds {max_bytes} bytes"
                )
            if time.monotonic() > deadline:
                raise FetchError(REASON_TIMEOUT, f"downloading from {target.host} took too long")
    except ReadTimeoutError:
        raise FetchError(REASON_TIMEOUT, f"{target.host} stopped sending data") from None
    except (HTTPError, OSError) as exc:
        raise FetchError(REASON_CONNECT, f"reading from {target.host} failed: {exc}") from None
    return bytes(body)


def fetch_url(
    url: str,
    *,
    allow_private: bool,
    max_bytes: int = 20 * 1024 * 1024,
    timeout: float = 15,
    max_redirects: int = 3,
    user_agent: str = "Steadfast meeting import",
    total_timeout: float | None = None,
) -> FetchedDocument:
    """GET url, vetting every hop's address and connecting only to the vetted IP."""
    deadline = time.monotonic() + (
        total_timeout if total_timeout is not None else timeout * _TOTAL_TIMEOUT_FACTOR
    )
    current = url
    for _hop in range(max_redirects + 1):
        target = _parse_target(current)
        addresses = _vetted_addresses(target, allow_private=allow_private)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(REASON_TIMEOUT, f"fetching {url} took too long")
        pool, response = _connect(
            target,
            addresses,
            timeout=min(timeout, remaining),
            headers={
                "User-Agent": user_agent,
                "Accept": "application/json, text/csv;q=0.9, */*;q=0.5",
                "Accept-Encoding": "identity",
            },
        )
        try:
            status = response.status
            if status in _REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(
                        REASON_HTTP_STATUS, f"HTTP {status} from {target.host} without a Location"
                    )
                current = urljoin(target.url, location.strip())
                logger.debug("fetch %s redirected to %s", target.url, current)
                continue
            if not 200 <= status < 300:
                raise FetchError(REASON_HTTP_STATUS, f"HTTP {status} from {target.host}")
            body = _read_capped(response, target, max_bytes=max_bytes, deadline=deadline)
            return FetchedDocument(
                body=body,
                content_type=response.headers.get("Content-Type"),
                final_url=target.url,
            )
        finally:
            # Never drain: an unread body may be huge or endless.
            response.close()
            pool.close()
    raise FetchError(REASON_REDIRECTS, f"more than {max_redirects} redirects")


def post_url(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    timeout: float = 10,
) -> int:
    """POST body to url through the same guard as fetch_url (no redirects); return the status."""
    target = _parse_target(url)
    addresses = _vetted_addresses(target, allow_private=allow_private)
    pool, response = _connect(
        target, addresses, timeout=timeout, headers=headers, method="POST", body=body
    )
    try:
        return response.status
    finally:
        # The receiver's answer body is not needed and may be large: never drain it.
        response.close()
        pool.close()
