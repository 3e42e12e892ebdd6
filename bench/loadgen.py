"""Load generation against 127.0.0.1 only: wrk when installed, else a bounded Python fallback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench.common import percentile

# Stops each wrk thread after its share of the request budget, so a run is bounded in count
# as well as in time. Requests, when given, are cycled through from a pre-built Lua table.
_LUA_COMMON = """
local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS_PER_THREAD") or "1000000")
local done = 0
response = function(status, headers, body)
  done = done + 1
  if done >= max_requests then wrk.thread:stop() end
end
"""


@dataclass
class LoadResult:
    """What one load run measured."""

    tool: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx responses and socket errors

    def label(self) -> str:
        return f"{self.rps:,.0f} req/s, p99 {self.p99_ms:.1f} ms ({self.tool})"


def _check_local(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        raise ValueError(f"load is only ever sent to the loopback address, not {host!r}")


def ensure_wrk(allow_install: bool = True) -> str | None:
    """Return the wrk binary, installing Debian's package once if allowed; None if unavailable."""
    found = shutil.which("wrk")
    if found or not allow_install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        try:
            subprocess.run(cmd, env=env, capture_output=True, timeout=180, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
    return shutil.which("wrk")


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _requests_lua(requests_: list[tuple[str, str, dict[str, str], str]]) -> str:
    """A Lua script cycling through (method, path, headers, body) requests."""
    lines = ["local reqs = {};"]
    for i, (method, path, headers, body) in enumerate(requests_, start=1):
        if i % 1000 == 1:
            # A function per thousand requests: LuaJIT caps the constants of one function.
            # Each statement before a "(" ends in ";", or Lua reads the "(" as a call of it.
            lines.append("(function()" if i == 1 else "end)();\n(function()")
        hdrs = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
        lines.append(
            f"reqs[{i}] = wrk.format({_lua_string(method)}, {_lua_string(path)}, {{{hdrs}}}, "
            f"{_lua_string(body)})"
        )
    if requests_:
        lines.append("end)();")
    lines.append("local n = 0")
    lines.append("request = function() n = n % #reqs + 1; return reqs[n] end")
    return "\n".join(lines) + "\n"


_LAT = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    wrk: str,
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    max_requests: int = 200_000,
    headers: dict[str, str] | None = None,
    requests_: list[tuple[str, str, dict[str, str], str]] | None = None,
) -> LoadResult:
    """Run wrk against a loopback URL for `seconds` (and at most max_requests)."""
    _check_local(url)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "bench.lua"
        script.write_text((_requests_lua(requests_) if requests_ else "") + _LUA_COMMON)
        cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--latency", "-s", str(script)]  # fmt: skip
        for k, v in (headers or {}).items():
            cmd += ["-H", f"{k}: {v}"]
        cmd.append(url)
        env = {**os.environ, "BENCH_MAX_REQUESTS_PER_THREAD": str(max(1, max_requests // threads))}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=seconds + 60, check=False)  # fmt: skip
        out = done.stdout
    if done.stderr.strip():
        # A script error leaves wrk sending its default GET, which would be measured instead.
        raise RuntimeError(f"wrk reported an error:\n{done.stderr}")
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if total is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    count = int(total.group(1))
    secs = float(total.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[total.group(3)]
    lat = {m.group(1): _ms(m.group(2), m.group(3)) for m in _LAT.finditer(out)}
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return LoadResult("wrk", count, secs, count / secs if secs else 0.0,
                      lat.get("50", float("nan")), lat.get("99", float("nan")), errors)  # fmt: skip


def run_python(
    url: str,
    *,
    seconds: float,
    connections: int,
    max_requests: int = 50_000,
    headers: dict[str, str] | None = None,
    requests_: list[tuple[str, str, dict[str, str], str]] | None = None,
) -> LoadResult:
    """Bounded fallback: `connections` threads with a requests.Session each (GIL-limited)."""
    _check_local(url)
    base = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    counter = iter(range(max_requests))

    def worker() -> None:
        nonlocal errors
        session = requests.Session()
        local: list[float] = []
        bad = 0
        for n in counter:
            if time.perf_counter() >= deadline:
                break
            started = time.perf_counter()
            if requests_:
                method, path, hdrs, body = requests_[n % len(requests_)]
                r = session.request(method, base + path, headers=hdrs, data=body.encode())
            else:
                r = session.get(url, headers=headers)
            local.append((time.perf_counter() - started) * 1000)
            bad += r.status_code >= 400
        with lock:
            latencies.extend(local)
            errors += bad

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - started
    return LoadResult("python fallback", len(latencies), secs, len(latencies) / secs,
                      percentile(latencies, 50), percentile(latencies, 99), errors)  # fmt: skip


def load(
    url: str,
    *,
    seconds: float,
    connections: int,
    headers: dict[str, str] | None = None,
    requests_: list[tuple[str, str, dict[str, str], str]] | None = None,
    max_requests: int = 200_000,
) -> LoadResult:
    """Load with wrk when it is (or can be) installed, else the labelled Python fallback."""
    wrk = ensure_wrk()
    if wrk:
        return run_wrk(wrk, url, seconds=seconds, connections=connections, headers=headers,
                       requests_=requests_, max_requests=max_requests)  # fmt: skip
    return run_python(url, seconds=seconds, connections=connections, headers=headers,
                      requests_=requests_, max_requests=min(max_requests, 50_000))  # fmt: skip


def sequential_latencies(
    url: str, count: int, headers: dict[str, str] | None = None
) -> list[float]:
    """GET url `count` times on one keep-alive connection; return each latency in ms."""
    _check_local(url)
    session = requests.Session()
    out = []
    for _ in range(count):
        started = time.perf_counter()
        r = session.get(url, headers=headers)
        r.content  # noqa: B018 - read the whole body
        out.append((time.perf_counter() - started) * 1000)
        if r.status_code >= 400:
            raise RuntimeError(f"GET {urlsplit(url).path} answered {r.status_code}")
    session.close()
    return out


@dataclass
class Slice:
    """One route of an alternating measurement: its URL and what each of its slices sends.

    `requests_` is a function of the slice number (0, 1, …) returning that slice's prepared
    requests, or None for a plain GET with `headers`: a route whose every request must be
    distinct (the webhook's MessageSids) gets a disjoint part of its pool per slice.
    """

    url: str
    headers: dict[str, str] | None = None
    requests_: Callable[[int], list[tuple[str, str, dict[str, str], str]]] | None = None
    max_requests: int = 200_000


def combine(results: list[LoadResult]) -> LoadResult:
    """One LoadResult of several slices of the same route: the rate is all their requests over
    all their time; p50 is the median of the slices' p50s and p99 the worst slice's (wrk
    reports percentiles per run, not the latencies themselves)."""
    if not results:
        raise ValueError("no slices to combine")
    count = sum(r.requests for r in results)
    secs = sum(r.seconds for r in results)
    p50s = sorted(r.p50_ms for r in results)
    tool = results[0].tool + (f", {len(results)} alternating slices" if len(results) > 1 else "")
    return LoadResult(tool, count, secs, count / secs if secs else 0.0,
                      p50s[(len(p50s) - 1) // 2], max(r.p99_ms for r in results),
                      sum(r.errors for r in results))  # fmt: skip


def slice_count(seconds: float, slices: int) -> int:
    """How many slices alternate() takes: wrk counts whole seconds, so a slice lasts at least
    one, and fewer slices are taken when `seconds` is short."""
    return max(1, min(slices, int(seconds)))


def alternate(
    routes: dict[str, Slice], *, seconds: float, connections: int, slices: int
) -> dict[str, list[LoadResult]]:
    """Load each route for `seconds` in all, as short runs taken in turn (see slice_count),
    so a change of the machine's load between them reaches every route alike; return each
    route's results, slice by slice (combine() sums them). Every other round runs the routes
    in reverse (A B, B A, A B, …), so a steady drift of load favours neither."""
    slices = slice_count(seconds, slices)
    each = seconds / slices
    done: dict[str, list[LoadResult]] = {name: [] for name in routes}
    for k in range(slices):
        names = list(routes) if k % 2 == 0 else list(reversed(routes))
        for name in names:
            route = routes[name]
            reqs = route.requests_(k) if route.requests_ is not None else None
            done[name].append(load(route.url, seconds=each, connections=connections,
                                   headers=route.headers, requests_=reqs,
                                   max_requests=route.max_requests))  # fmt: skip
    return done
