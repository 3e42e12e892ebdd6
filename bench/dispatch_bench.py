"""Dispatch through the real twilio library to the fake Twilio server, beside bare HTTP POSTs."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import requests
from sqlalchemy import func, select

from bench.common import TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, Row, fmt_s

if TYPE_CHECKING:
    from bench.run import Bench

FROM_NUMBER = "+15055550000"


@contextmanager
def fake_twilio_process() -> Iterator[str]:
    """Run the fake Twilio server in a child process on 127.0.0.1; yield its base URL."""
    from bench.run import REPO

    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_twilio_server", "--account-sid", TWILIO_ACCOUNT_SID,
         "--auth-token", TWILIO_AUTH_TOKEN],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = proc.stdout.readline().strip() if proc.stdout else ""
        if not base.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"fake Twilio did not start (said {base!r})")
        yield base
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _queued(b: Bench, count: int, skip: int = 0) -> list[str]:
    from bench.run import _t

    ms = _t("messages")
    with b.engine.connect() as conn:
        return list(
            conn.scalars(
                select(ms.c.id)
                .where(ms.c.status == "queued", ms.c.direction == "outbound")
                .order_by(ms.c.send_after, ms.c.id)
                .offset(skip)
                .limit(count)
            )
        )


def _requeue(b: Bench, ids: list[str]) -> None:
    from bench.run import _t

    ms = _t("messages")
    with b.engine.begin() as conn:
        conn.execute(
            ms.update()
            .where(ms.c.id.in_(ids))
            .values(status="queued", provider_sid=None, claimed_at=None, sent_at=None,
                    delivered_at=None, error_code=None, error_message=None, attempts=0)
        )  # fmt: skip


def _sent_count(b: Bench, ids: list[str]) -> dict[str, int]:
    from bench.run import _t

    ms = _t("messages")
    with b.engine.connect() as conn:
        rows = conn.execute(
            select(ms.c.status, func.count()).where(ms.c.id.in_(ids)).group_by(ms.c.status)
        )
        return {status: n for status, n in rows}


def _bare_posts(base: str, count: int) -> float:
    """POST `count` message creations with one requests.Session, as the twilio library does."""
    session = requests.Session()
    session.auth = (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)
    url = f"{base}/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json"
    started = time.perf_counter()
    for i in range(count):
        r = session.post(url, data={"To": f"+1202{3_000_000 + i:07d}", "From": FROM_NUMBER,
                                    "Body": "Steadfast: did it happen? Reply YES or NO."})  # fmt: skip
        if r.status_code != 201:
            raise RuntimeError(f"fake Twilio answered {r.status_code}")
    seconds = time.perf_counter() - started
    session.close()
    return seconds


def measure(b: Bench, dispatch_outbox: Callable[..., int]) -> list[Row]:
    from service.db import db
    from service.notifications.providers import TwilioProvider

    p = b.profile
    now = b.now + timedelta(seconds=3)
    rows: list[Row] = []
    with fake_twilio_process() as base, b.app.app_context():
        settings = b.app.extensions["settings"]
        provider = TwilioProvider.from_settings(
            TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, from_number=FROM_NUMBER, base_url=base
        )
        try:
            ids = _queued(b, p.dispatch_messages)
            if not ids:
                raise RuntimeError("nothing queued to dispatch (the busy-minute step queues it)")
            unlimited = dataclasses.replace(settings, SMS_MPS=0)
            # No message_ids: its IN list would ride along in every claim and make each one
            # O(N). The busy minute's texts are the whole outbox, and `limit` claims exactly
            # len(ids) of them in the same (send_after, id) order as _queued lists them.
            seconds, sent = _timed(lambda: dispatch_outbox(
                now=now, provider=provider, settings=unlimited, limit=len(ids)))  # fmt: skip
            db.session.remove()
            floor = _bare_posts(base, max(1, sent))
            statuses = _sent_count(b, ids)
            ratio = seconds / floor if sent else None
            rows.append(Row("dispatch", "dispatch to fake Twilio (0 ms), real twilio library",
                            b.backend, value=f"{sent / seconds:,.0f} msg/s ({sent:,} in {fmt_s(seconds)})",
                            floor=f"{sent / floor:,.0f} POST/s ({fmt_s(floor)})", ratio=ratio,
                            goal="≤ 1.3× floor time",
                            note=f"SMS_MPS=0; outcomes {statuses}",
                            data={"seconds": seconds, "floor_seconds": floor, "sent": sent,
                                  "statuses": statuses})
                        .judge(ratio is not None and ratio <= 1.3))  # fmt: skip

            if len(_queued(b, p.mps_messages)) < p.mps_messages:
                # The first pass drained the outbox: send some of its texts again.
                _requeue(b, ids[: p.mps_messages])
            mps_ids = _queued(b, p.mps_messages)
            limited = dataclasses.replace(settings, SMS_MPS=p.mps)
            seconds, sent = _timed(lambda: dispatch_outbox(
                now=now, provider=provider, settings=limited, limit=len(mps_ids)))  # fmt: skip
            db.session.remove()
            achieved = sent / seconds if seconds else 0.0
            error = achieved / p.mps - 1
            rows.append(Row("dispatch_mps", f"SMS_MPS accuracy (MPS={p.mps:g})", b.backend,
                            value=f"{achieved:.1f} msg/s over {sent} messages",
                            floor=f"{p.mps:g} msg/s asked", ratio=achieved / p.mps,
                            goal="within ±5%", note=f"{error:+.1%}",
                            data={"seconds": seconds, "sent": sent, "achieved": achieved})
                        .judge(sent > 0 and abs(error) <= 0.05))  # fmt: skip
        finally:
            provider.close()
    return rows


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result
