"""A mixed, paced load against 127.0.0.1: API reads and writes, signed inbound webhooks, feed polls.

Open loop, like wrk2: request i is due at start + i/rate whatever the server does, so a slow
server makes requests late instead of making the generator politely slower, and each latency is
measured from when the request was due (queueing included, no coordinated omission). Threads
with one keep-alive connection each send the requests; the run is bounded in time and count.

    from bench.loadmix import prepare, standard_mix, run
    targets = prepare(app, now)              # API tokens, ids, feed tokens, phone numbers
    mix = standard_mix(targets, public_base_url, twilio_auth_token)
    report = run("http://127.0.0.1:8000", mix, rate=200, seconds=60)
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from bench.common import percentile

EXPECTED = range(200, 400)  # 2xx and 3xx (a feed poll with a matching ETag is 304)


@dataclass
class Request:
    kind: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Targets:
    """What the mix needs from the database: credentials, ids, feed tokens, phone numbers."""

    tokens: list[str]  # one API token per therapist, same order as clients_by_token
    clients_by_token: list[list[str]]
    feed_tokens: list[str]
    inbound: list[tuple[str, str]]  # (from: a client's or contact's phone, to: the practice's)
    etags: dict[str, str] = field(default_factory=dict)  # feed token -> ETag seen at warm-up


def prepare(app: Any, now: datetime, *, therapists: int = 4, feeds: int = 40) -> Targets:
    """Issue API tokens and feed links for a few therapists of a generated population."""
    from sqlalchemy import select

    from service import feeds as feed_links
    from service.db import db
    from service.models import Client, Practice, SupportContact, Therapist
    from service.therapists import issue_token

    with app.app_context():
        chosen = db.session.scalars(
            select(Therapist).where(Therapist.role == "therapist").order_by(Therapist.id)
        ).all()[:therapists]
        tokens, clients_by_token = [], []
        for therapist in chosen:
            tokens.append(issue_token(therapist, now=now))
            clients_by_token.append(list(db.session.scalars(
                select(Client.id).where(Client.therapist_id == therapist.id,
                                        Client.status == "active").order_by(Client.id))))  # fmt: skip
        clients = db.session.scalars(
            select(Client).where(Client.status == "active").order_by(Client.id).limit(feeds)
        ).all()
        feed_tokens = [
            feed_links.rotate_client_feed(c, now=now).rsplit("/", 1)[1].removesuffix(".ics")
            for c in clients
        ]
        numbers = dict(db.session.execute(select(Practice.id, Practice.sms_from_number)).all())
        inbound = [(c.phone, numbers[c.practice_id]) for c in clients]
        contacts = db.session.scalars(
            select(SupportContact).where(SupportContact.client_id.in_([c.id for c in clients]))
        ).all()
        inbound += [(c.phone, numbers[c.practice_id]) for c in contacts]
        db.session.commit()
        return Targets(tokens, clients_by_token, feed_tokens, inbound)


def warm_feeds(base_url: str, targets: Targets) -> None:
    """Fetch every feed once (renders and caches it) and keep its ETag for the 304 polls."""
    conn = _connect(base_url)
    for token in targets.feed_tokens:
        conn.request("GET", f"/feeds/{token}.ics")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"feed warm-up answered {response.status}")
        targets.etags[token] = response.getheader("ETag") or ""
    conn.close()


Factory = Callable[[random.Random], Request]


def standard_mix(
    targets: Targets, public_base_url: str, auth_token: str, account_sid: str = "AC" + "f" * 32
) -> list[tuple[str, int, Factory]]:
    """The mix of issue #9: (kind, weight, factory). Every request is valid and answers 2xx/3xx."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(auth_token)
    inbound_url = f"{public_base_url.rstrip('/')}/twilio/inbound"
    owners = [i for i, ids in enumerate(targets.clients_by_token) if ids]

    def auth(i: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {targets.tokens[i]}"}

    def a_client(rng: random.Random) -> tuple[int, str]:
        i = rng.choice(owners)
        return i, rng.choice(targets.clients_by_token[i])

    def clients_list(rng: random.Random) -> Request:
        return Request("api_read", "GET", "/api/v1/clients?limit=50", auth(rng.choice(owners)))

    def client_checkins(rng: random.Random) -> Request:
        i, cid = a_client(rng)
        return Request("api_read", "GET", f"/api/v1/clients/{cid}/checkins?limit=50", auth(i))

    def alerts(rng: random.Random) -> Request:
        return Request("api_read", "GET", "/api/v1/alerts?limit=50", auth(rng.choice(owners)))

    def events(rng: random.Random) -> Request:
        return Request("api_read", "GET", "/api/v1/events?limit=50", auth(rng.choice(owners)))

    def patch_client(rng: random.Random) -> Request:
        i, cid = a_client(rng)
        body = json.dumps({"coping_plan": f"Call the sponsor; walk {rng.randrange(5, 30)} min."})
        return Request("api_write", "PATCH", f"/api/v1/clients/{cid}",
                       {**auth(i), "Content-Type": "application/merge-patch+json"},
                       body.encode())  # fmt: skip

    def inbound(rng: random.Random) -> Request:
        from_, to = rng.choice(targets.inbound)
        params = {"MessageSid": "SM" + uuid.UUID(int=rng.getrandbits(128)).hex,
                  "AccountSid": account_sid, "From": from_, "To": to,
                  "Body": rng.choice(("YES", "NO", "Y", "yes")), "NumMedia": "0"}  # fmt: skip
        signature = validator.compute_signature(inbound_url, params)
        return Request("webhook", "POST", "/twilio/inbound",
                       {"Content-Type": "application/x-www-form-urlencoded",
                        "X-Twilio-Signature": signature}, urlencode(params).encode())  # fmt: skip

    def feed(rng: random.Random) -> Request:
        return Request("feed", "GET", f"/feeds/{rng.choice(targets.feed_tokens)}.ics")

    def feed_etag(rng: random.Random) -> Request:
        token = rng.choice(targets.feed_tokens)
        headers = {"If-None-Match": targets.etags[token]} if targets.etags.get(token) else {}
        return Request("feed_304", "GET", f"/feeds/{token}.ics", headers)

    return [
        ("api_read", 12, clients_list),
        ("api_read", 12, client_checkins),
        ("api_read", 8, alerts),
        ("api_read", 6, events),
        ("api_write", 7, patch_client),
        ("webhook", 15, inbound),
        ("feed", 15, feed),
        ("feed_304", 25, feed_etag),
    ]


# Seconds a request may take before it counts as a connection error (gunicorn's worker timeout).
REQUEST_TIMEOUT = 30.0


def _connect(base_url: str, timeout: float = REQUEST_TIMEOUT) -> http.client.HTTPConnection:
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        raise ValueError(f"load is only ever sent to the loopback address, not {host!r}")
    return http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)


@dataclass
class _Sample:
    kind: str
    status: int | str  # an HTTP status, or the name of a connection error
    due_ms: float  # from when it was due (queueing included)
    service_ms: float  # from when it was sent


def run(
    base_url: str,
    mix: list[tuple[str, int, Factory]],
    *,
    rate: float = 200,
    seconds: float = 60,
    workers: int = 32,
    seed: int = 9,
    grace: float = 5.0,
) -> dict[str, Any]:
    """Offer `rate` requests per second for `seconds`; return the figures (see summarise).

    At most `workers` requests are in flight. When the server cannot keep up, requests start
    late (their latency counts from when they were due) and those still unsent `grace` seconds
    after the window are dropped and reported as `not_sent`.
    """
    total = int(rate * seconds)
    rng = random.Random(seed)
    weights = [w for _, w, _ in mix]
    plan = [rng.choices(range(len(mix)), weights)[0] for _ in range(total)]
    counter = itertools.count()
    lock = threading.Lock()
    samples: list[_Sample] = []
    started = time.perf_counter() + 0.5  # let every thread reach its first request
    # Bounded in time: nothing is sent after the window (plus a little slack for stragglers).
    stop_by = started + seconds + grace

    def worker(index: int) -> None:
        local_rng = random.Random(seed * 1000 + index)
        conn = _connect(base_url)
        out: list[_Sample] = []
        while True:
            with lock:
                i = next(counter)
            if i >= total:
                break
            due = started + i / rate
            if time.perf_counter() > stop_by:
                continue  # the server fell this far behind: counted as not sent
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            req = mix[plan[i]][2](local_rng)
            sent = time.perf_counter()
            try:
                conn.request(req.method, req.path, body=req.body or None, headers=req.headers)
                response = conn.getresponse()
                response.read()
                status: int | str = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
                conn.close()
                conn = _connect(base_url)
            done = time.perf_counter()
            out.append(_Sample(req.kind, status, (done - due) * 1000, (done - sent) * 1000))
        conn.close()
        with lock:
            samples.extend(out)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - started
    report = summarise(samples, rate=rate, seconds=seconds, elapsed=elapsed, workers=workers)
    report["overall"]["not_sent"] = total - len(samples)
    report["overall"]["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    return report


def _figures(rows: list[_Sample]) -> dict[str, Any]:
    statuses = Counter(str(s.status) for s in rows)
    due = [s.due_ms for s in rows]
    service = [s.service_ms for s in rows]
    return {
        "requests": len(rows),
        "statuses": dict(sorted(statuses.items())),
        "errors_5xx": sum(isinstance(s.status, int) and s.status >= 500 for s in rows),
        "errors_4xx": sum(isinstance(s.status, int) and 400 <= s.status < 500 for s in rows),
        "connection_errors": sum(isinstance(s.status, str) for s in rows),
        "p50_ms": round(percentile(due, 50), 1) if due else None,
        "p99_ms": round(percentile(due, 99), 1) if due else None,
        "max_ms": round(max(due), 1) if due else None,
        "service_p50_ms": round(percentile(service, 50), 1) if service else None,
        "service_p99_ms": round(percentile(service, 99), 1) if service else None,
    }


def summarise(
    samples: list[_Sample], *, rate: float, seconds: float, elapsed: float, workers: int
) -> dict[str, Any]:
    """Overall and per-kind figures; latencies in ms from when each request was due."""
    overall = _figures(samples)
    overall |= {
        "offered_rps": rate,
        "seconds": seconds,
        "elapsed_s": round(elapsed, 1),
        "achieved_rps": round(len(samples) / seconds, 1) if seconds else 0.0,
        "workers": workers,
    }
    kinds = sorted({s.kind for s in samples})
    return {
        "overall": overall,
        "kinds": {k: _figures([s for s in samples if s.kind == k]) for k in kinds},
    }


def summary_line(report: dict[str, Any]) -> str:
    """One line: rate held, errors, p50/p99 overall and per kind."""
    o = report["overall"]
    parts = [
        f"{o['achieved_rps']}/{o['offered_rps']} req/s held over {o['seconds']:g} s "
        f"({o['not_sent']} not sent, {o['elapsed_s']} s elapsed), "
        f"{o['errors_5xx']} 5xx, {o['errors_4xx']} 4xx, {o['connection_errors']} conn errors, "
        f"p50 {o['p50_ms']} ms, p99 {o['p99_ms']} ms"
    ]
    for kind, f in report["kinds"].items():
        parts.append(f"{kind} n={f['requests']} p50 {f['p50_ms']} p99 {f['p99_ms']}")
    return "; ".join(parts)
