"""bench.loadgen's wrk driver sends every prepared request, however many there are."""

from __future__ import annotations

import http.server
import shutil
import threading

import pytest

from bench.loadgen import run_wrk

WRK = shutil.which("wrk")


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str | None, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append((self.path, self.headers.get("X-Sig"), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def recorder():
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(WRK is None, reason="wrk is not installed")
def test_thousands_of_distinct_requests_are_each_sent_once(recorder):
    # More than one Lua function's worth (the script splits them per thousand).
    reqs = [("POST", "/hook", {"X-Sig": f"s{i}"}, f"i={i}") for i in range(2500)]
    url = f"http://127.0.0.1:{recorder.server_port}/hook"
    result = run_wrk(WRK, url, seconds=1, connections=1, requests_=reqs, max_requests=len(reqs))
    assert result.errors == 0
    assert result.requests == len(reqs)
    sent = sorted(_Recorder.seen, key=lambda r: int(r[2].split(b"=")[1]))
    assert sent == [("/hook", f"s{i}", f"i={i}".encode()) for i in range(2500)]


@pytest.mark.skipif(WRK is None, reason="wrk is not installed")
def test_a_script_error_is_raised_not_measured(recorder, monkeypatch):
    # Were it ignored, wrk would send its default GET and that would be measured instead.
    import bench.loadgen as loadgen

    monkeypatch.setattr(loadgen, "_requests_lua", lambda _reqs: "this is not lua\n")
    url = f"http://127.0.0.1:{recorder.server_port}/hook"
    with pytest.raises(RuntimeError, match="wrk reported an error"):
        run_wrk(WRK, url, seconds=1, connections=1, requests_=[("POST", "/hook", {}, "a")])
    assert _Recorder.seen == []
