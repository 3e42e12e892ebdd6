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


def test_slices_are_combined_as_summed_requests_over_summed_time() -> None:
    from bench.loadgen import LoadResult, combine

    slices = [LoadResult("wrk", 300, 1.0, 300.0, 2.0, 9.0, 0),
              LoadResult("wrk", 100, 1.0, 100.0, 4.0, 30.0, 1),
              LoadResult("wrk", 200, 2.0, 100.0, 3.0, 12.0, 0)]  # fmt: skip
    got = combine(slices)
    assert (got.requests, got.seconds, got.rps) == (600, 4.0, 150.0)  # not the mean of rates
    assert (got.p50_ms, got.p99_ms, got.errors) == (3.0, 30.0, 1)
    assert got.tool == "wrk, 3 alternating slices"
    assert combine(slices[:1]) == slices[0]


@pytest.mark.skipif(WRK is None, reason="wrk is not installed")
def test_routes_alternate_slice_by_slice_and_parts_are_sent_once(recorder, monkeypatch) -> None:
    import bench.loadgen as loadgen

    order: list[str] = []
    real_load = loadgen.load

    def load(url: str, **kwargs):  # noqa: ANN202, ANN003 - passes through
        order.append(url.rsplit("/", 1)[1])
        return real_load(url, **kwargs)

    monkeypatch.setattr(loadgen, "load", load)
    base = f"http://127.0.0.1:{recorder.server_port}"
    pool = [("POST", "/a", {"X-Sig": f"s{i}"}, f"i={i}") for i in range(300)]
    part = len(pool) // loadgen.slice_count(3, 5)
    measured = loadgen.alternate(
        {"a": loadgen.Slice(f"{base}/a", max_requests=part,
                            requests_=lambda k: pool[k * part : (k + 1) * part]),
         "b": loadgen.Slice(f"{base}/b", requests_=lambda _k: [("POST", "/b", {}, "b")])},
        seconds=3, connections=1, slices=5)  # fmt: skip
    assert loadgen.slice_count(3, 5) == 3 and order == ["a", "b", "b", "a", "a", "b"]
    assert [len(measured[k]) for k in ("a", "b")] == [3, 3]
    sent_a = sorted(int(body.split(b"=")[1]) for path, _, body in _Recorder.seen if path == "/a")
    assert sent_a == list(range(300))  # each request of the pool once, none repeated
    assert sum(r.requests for r in measured["a"]) == 300
