"""Tests for safe fetching of user-supplied URLs (all traffic stays on 127.0.0.1)."""

from __future__ import annotations

import json
import time

import pytest

from service import fetch
from service.fetch import FetchError, fetch_url, is_public_address, resolve_host, vet_url
from tests.imports.conftest import GOOD_BODY, FakeDNS, LocalServer


def _error(url: str, **kwargs) -> FetchError:
    kwargs.setdefault("allow_private", True)
    with pytest.raises(FetchError) as caught:
        fetch_url(url, **kwargs)
    return caught.value


# --- address policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # CGNAT
        "100.127.255.254",
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.10",
        "198.18.0.1",
        "::",
        "::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fe80::1%eth0",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2001:db8::1",
        "not an ip",
        "",
        "010.0.0.1",
    ],
)
def test_non_public_addresses_refused(ip: str) -> None:
    assert is_public_address(ip) is False


@pytest.mark.parametrize(
    "ip",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "100.128.0.1",
        "172.32.0.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
    ],
)
def test_public_addresses_allowed(ip: str) -> None:
    assert is_public_address(ip) is True


def test_resolve_host_on_a_literal() -> None:
    assert resolve_host("127.0.0.1", 80) == ["127.0.0.1"]


# --- URL vetting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://feeds.example.org/x.json",
        "gopher://feeds.example.org:70/_x",
        "data:application/json,[]",
        "javascript:alert(1)",
        "/relative/path",
        "feeds.example.org/meetings",
    ],
)
def test_non_http_schemes_refused(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        vet_url(url, allow_private=True)
    assert caught.value.reason == "scheme"


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pw@feeds.example.org/",
        "http://user@feeds.example.org/",
        "https://feeds.example.org@127.0.0.1/",
        "http:///nohost",
        "http://feeds.example.org:99999/",
        "http://feeds.example.org/a b",
        "http://feeds.example.org/\r\nX-Injected: 1",
        "",
    ],
)
def test_malformed_urls_and_credentials_refused(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        vet_url(url, allow_private=True)
    assert caught.value.reason == "url"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:7f00:1]/",
        "http://0.0.0.0/",
    ],
)
def test_private_literals_refused_unless_allowed(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        vet_url(url, allow_private=False)
    assert caught.value.reason == "address"
    vet_url(url, allow_private=True)


def test_hostname_resolving_to_private_refused(fake_dns: FakeDNS) -> None:
    with pytest.raises(FetchError) as caught:
        vet_url("https://feeds.example.org/meetings", allow_private=False)
    assert caught.value.reason == "address"
    assert "127.0.0.1" in str(caught.value)
    assert fake_dns.lookups == [("feeds.example.org", 443)]


def test_one_private_answer_among_public_ones_refuses(fake_dns: FakeDNS) -> None:
    fake_dns.table["mixed.example.org"] = ["93.184.216.34", "10.0.0.7"]
    with pytest.raises(FetchError) as caught:
        vet_url("http://mixed.example.org/", allow_private=False)
    assert caught.value.reason == "address"


def test_public_hostname_passes_vetting(fake_dns: FakeDNS) -> None:
    fake_dns.table["public.example.org"] = ["93.184.216.34"]
    vet_url("https://PUBLIC.example.org./feed?x=1#frag", allow_private=False)
    assert fake_dns.lookups == [("public.example.org", 443)]


def test_idn_hostname_is_resolved_in_ascii_form(fake_dns: FakeDNS) -> None:
    fake_dns.table["xn--bcher-kva.example"] = ["93.184.216.34"]
    vet_url("https://b\u00fccher.example/meetings", allow_private=False)
    assert fake_dns.lookups == [("xn--bcher-kva.example", 443)]


def test_unresolvable_host_is_a_connect_error(fake_dns: FakeDNS) -> None:
    with pytest.raises(FetchError) as caught:
        vet_url("http://nowhere.example.org/", allow_private=False)
    assert caught.value.reason == "connect"


# --- fetching -------------------------------------------------------------------------------


def test_fetch_good(local_server: LocalServer) -> None:
    document = fetch_url(local_server.url("/good"), allow_private=True)
    assert document.body == GOOD_BODY
    assert document.content_type == "application/json; charset=utf-8"
    assert document.final_url == local_server.url("/good")


def test_loopback_refused_without_allow_private(local_server: LocalServer) -> None:
    error = _error(local_server.url("/good"), allow_private=False)
    assert error.reason == "address"
    assert local_server.requests == []  # refused before connecting


def test_connects_to_vetted_ip_with_original_host_header(
    local_server: LocalServer, fake_dns: FakeDNS
) -> None:
    document = fetch_url(
        local_server.url("/echo?q=1", host="feeds.example.org"), allow_private=True
    )
    assert json.loads(document.body) == {
        "host": f"feeds.example.org:{local_server.port}",
        "path": "/echo?q=1",
    }
    # Resolved exactly once, by resolve_host; the autouse guard fails any other lookup.
    assert fake_dns.lookups == [("feeds.example.org", local_server.port)]


def test_non_ascii_path_is_percent_encoded(local_server: LocalServer) -> None:
    document = fetch_url(local_server.url("/echo/caf\u00e9"), allow_private=True)
    assert json.loads(document.body)["path"] == "/echo/caf%C3%A9"


@pytest.mark.parametrize("status", [404, 500, 204])
def test_http_status(local_server: LocalServer, status: int) -> None:
    if status == 204:
        assert fetch_url(local_server.url("/status/204"), allow_private=True).body == b""
        return
    error = _error(local_server.url(f"/status/{status}"))
    assert (error.reason, str(error)) == ("http_status", f"HTTP {status} from 127.0.0.1")


def test_size_cap_with_content_length(local_server: LocalServer) -> None:
    error = _error(local_server.url("/huge-length"), max_bytes=1024 * 1024)
    assert error.reason == "too_large"


def test_size_cap_without_content_length(local_server: LocalServer) -> None:
    error = _error(local_server.url("/huge-no-length"), max_bytes=200_000)
    assert error.reason == "too_large"


def test_size_cap_with_chunked_body(local_server: LocalServer) -> None:
    error = _error(local_server.url("/huge-chunked"), max_bytes=200_000)
    assert error.reason == "too_large"


def test_lying_short_content_length_never_reads_past_it(local_server: LocalServer) -> None:
    document = fetch_url(local_server.url("/lying-length"), allow_private=True, max_bytes=1000)
    assert document.body == b"a" * 100


def test_body_at_exactly_the_cap_is_fine(local_server: LocalServer) -> None:
    document = fetch_url(local_server.url("/good"), allow_private=True, max_bytes=len(GOOD_BODY))
    assert document.body == GOOD_BODY
    assert _error(local_server.url("/good"), max_bytes=len(GOOD_BODY) - 1).reason == "too_large"


def test_read_timeout(local_server: LocalServer) -> None:
    started = time.monotonic()
    error = _error(local_server.url("/slow"), timeout=0.3)
    assert error.reason == "timeout"
    assert time.monotonic() - started < 2


def test_dripping_body_hits_the_total_deadline(local_server: LocalServer) -> None:
    started = time.monotonic()
    error = _error(local_server.url("/drip"), timeout=1, total_timeout=0.5)
    assert error.reason == "timeout"
    assert time.monotonic() - started < 2


def test_connection_refused(local_server: LocalServer) -> None:
    port = local_server.port
    local_server.server.server_close()  # nothing listens there any more
    error = _error(f"http://127.0.0.1:{port}/good", timeout=2)
    assert error.reason == "connect"


# --- redirects ------------------------------------------------------------------------------


def test_follows_redirects_up_to_the_limit(local_server: LocalServer) -> None:
    # /redirect/N answers N + 1 redirects before /good.
    document = fetch_url(local_server.url("/redirect/2"), allow_private=True, max_redirects=3)
    assert document.body == GOOD_BODY
    assert document.final_url == local_server.url("/good")
    assert [path for path, _ in local_server.requests] == [
        "/redirect/2",
        "/redirect/1",
        "/redirect/0",
        "/good",
    ]


def test_too_many_redirects(local_server: LocalServer) -> None:
    error = _error(local_server.url("/redirect/3"), max_redirects=3)
    assert error.reason == "redirects"
    assert len(local_server.requests) == 4
    assert _error(local_server.url("/redirect/0"), max_redirects=0).reason == "redirects"


def test_redirect_without_location(local_server: LocalServer) -> None:
    assert _error(local_server.url("/redirect-no-location")).reason == "http_status"


@pytest.fixture
def loopback_counts_as_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the first hop reach the local server; every other address keeps the real policy."""
    real = fetch.is_public_address
    monkeypatch.setattr(fetch, "is_public_address", lambda ip: ip == "127.0.0.1" or real(ip))


@pytest.mark.usefixtures("loopback_counts_as_public")
@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("http://169.254.169.254/latest/meta-data/", "302"),
        ("http://[::1]/admin", "301"),
        ("http://[::ffff:a9fe:a9fe]/latest/meta-data/", "307"),
        ("http://internal.example.org/", "308"),  # a name that resolves to 10.0.0.5
        ("http://0.0.0.0:8080/", "303"),
        ("file:///etc/passwd", "302"),
    ],
)
def test_redirect_hops_are_re_vetted(
    local_server: LocalServer, fake_dns: FakeDNS, target: str, status: str
) -> None:
    fake_dns.table["internal.example.org"] = ["10.0.0.5"]
    url = local_server.url(f"/redirect-to?status={status}&url={target}", host="feeds.example.org")
    error = _error(url, allow_private=False)
    assert error.reason == ("scheme" if target.startswith("file:") else "address")
    assert len(local_server.requests) == 1  # the redirect target was never contacted


@pytest.mark.usefixtures("loopback_counts_as_public")
def test_public_redirect_chain_still_works(local_server: LocalServer, fake_dns: FakeDNS) -> None:
    document = fetch_url(
        local_server.url("/redirect/1", host="feeds.example.org"), allow_private=False
    )
    assert document.body == GOOD_BODY
    assert document.final_url == local_server.url("/good", host="feeds.example.org")
    # Each hop was resolved (and so vetted) again.
    assert fake_dns.lookups == [("feeds.example.org", local_server.port)] * 3


# --- TLS ------------------------------------------------------------------------------------


def test_https_to_pinned_ip_verifies_the_url_hostname(
    tls_server: LocalServer, fake_dns: FakeDNS
) -> None:
    document = fetch_url(tls_server.url("/echo", host="feeds.example.org"), allow_private=True)
    assert json.loads(document.body)["host"] == f"feeds.example.org:{tls_server.port}"


def test_https_certificate_for_another_name_is_refused(
    tls_server: LocalServer, fake_dns: FakeDNS
) -> None:
    fake_dns.table["other.example.org"] = ["127.0.0.1"]
    error = _error(tls_server.url("/good", host="other.example.org"))
    assert error.reason == "connect"
    assert "TLS" in str(error)


def test_https_by_ip_literal_is_refused_by_name_check(tls_server: LocalServer) -> None:
    assert _error(tls_server.url("/good")).reason == "connect"
