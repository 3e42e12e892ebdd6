"""Fixtures for the meeting-import tests: feed files, a fake resolver, local HTTP(S) servers."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from service import fetch

FIXTURES = Path(__file__).parent / "fixtures"
GOOD_BODY = b'[{"name": "Good", "slug": "good", "day": 1, "time": "19:00"}]'


@pytest.fixture
def fixture_bytes() -> Callable[[str], bytes]:
    """Return a loader for files in tests/imports/fixtures."""
    return lambda name: (FIXTURES / name).read_bytes()


@pytest.fixture
def fixture_json(fixture_bytes: Callable[[str], bytes]) -> Callable[[str], Any]:
    """Return a loader that decodes a fixture file as JSON."""
    return lambda name: json.loads(fixture_bytes(name))


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test here that would resolve a real name or connect beyond 127.0.0.1."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def numeric_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            ipaddress.ip_address(str(host))
        except ValueError:
            raise AssertionError(f"test tried to resolve a real name: {host!r}") from None
        return real_getaddrinfo(host, *args, **kwargs)

    def loopback_connect(sock: socket.socket, address: Any) -> Any:
        if not (isinstance(address, tuple) and address[0] == "127.0.0.1"):
            raise AssertionError(f"test tried to connect to {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", numeric_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", loopback_connect)


@dataclass
class FakeDNS:
    """A resolve_host stand-in: a fixed name -> addresses table that records lookups."""

    table: dict[str, list[str]] = field(default_factory=dict)
    lookups: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, f"fake DNS has no entry for {host}")
        return list(self.table[host])


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    """Replace service.fetch.resolve_host; feeds.example.org -> 127.0.0.1 by default."""
    dns = FakeDNS(table={"feeds.example.org": ["127.0.0.1"]})
    monkeypatch.setattr(fetch, "resolve_host", dns)
    return dns


class _Handler(BaseHTTPRequestHandler):
    server: _TestServer

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, chunk: bytes, count: int, delay: float = 0.0) -> None:
        try:
            for _ in range(count):
                if self.server.stopping.is_set():
                    return
                self.wfile.write(chunk)
                self.wfile.flush()
                if delay:
                    time.sleep(delay)
        except OSError:
            pass  # the client gave up, which is the point of these routes

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        self.server.requests.append((path, self.headers.get("Host", "")))
        if path == "/good":
            self._send(200, GOOD_BODY, {"Content-Type": "application/json; charset=utf-8"})
        elif path.startswith("/echo"):
            body = json.dumps({"host": self.headers.get("Host"), "path": self.path}).encode()
            self._send(200, body, {"Content-Type": "application/json"})
        elif path == "/huge-no-length":
            # HTTP/1.0 style: no Content-Length, the body ends when the socket closes.
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self._stream(b"x" * 65536, 64)
        elif path == "/huge-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"y" * 65536
            self._stream(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n", 64)
        elif path == "/huge-length":
            self._send(200, b"z" * 1000, {"Content-Length": str(50 * 1024 * 1024)})
        elif path == "/lying-length":
            self.close_connection = True
            self._send(200, b"a" * 200_000, {"Content-Length": "100"})
        elif path == "/slow":
            self.server.stopping.wait(3)
            if not self.server.stopping.is_set():
                self._send(200, GOOD_BODY)
        elif path == "/drip":
            self.close_connection = True
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self._stream(b".", 400, delay=0.05)
        elif path.startswith("/redirect/"):
            remaining = int(path.rsplit("/", 1)[1])
            target = "/good" if remaining == 0 else f"/redirect/{remaining - 1}"
            self._send(302, headers={"Location": target})
        elif path == "/redirect-to":
            self._send(int(query.get("status", ["302"])[0]), headers={"Location": query["url"][0]})
        elif path == "/redirect-no-location":
            self._send(302)
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"nope")
        else:
            self._send(404, b"not found")


class _TestServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str]] = []
        self.stopping = threading.Event()


@dataclass
class LocalServer:
    """A running test server: its port, base URL and the requests it saw."""

    server: _TestServer
    scheme: str

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self.server.requests


def _run(server: _TestServer, scheme: str) -> Iterator[LocalServer]:
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield LocalServer(server, scheme)
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """Serve the test routes over plain HTTP on 127.0.0.1."""
    yield from _run(_TestServer(), "http")


@dataclass
class TLSMaterial:
    """A throwaway CA and a server certificate for feeds.example.org."""

    ca_pem: bytes
    cert_path: Path
    key_path: Path


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    """Create a CA and a leaf certificate for feeds.example.org."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Steadfast Test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "feeds.example.org")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("feeds.example.org")]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path = directory / "leaf.pem"
    key_path = directory / "leaf.key"
    cert_path.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TLSMaterial(ca_cert.public_bytes(serialization.Encoding.PEM), cert_path, key_path)


@pytest.fixture
def tls_server(tls_material: TLSMaterial, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    """Serve the test routes over HTTPS; fetch trusts only the throwaway CA."""
    server = _TestServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_material.cert_path, tls_material.key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    client_context = ssl.create_default_context(cadata=tls_material.ca_pem.decode("ascii"))
    monkeypatch.setattr(fetch, "_ssl_context", lambda: client_context)
    yield from _run(server, "https")
