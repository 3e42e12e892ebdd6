"""Run the benchmarks (quick or full profile): each measurement beside its floor, in the same run."""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, create_engine, delete, func, select, update

from bench import loadgen
from bench.common import (
    APP_OVERRIDES,
    NOT_AVAILABLE,
    Row,
    fmt_s,
    free_port,
    machine_info,
    percentile,
    pg_reachable,
    private_postgres,
    rss_peak_kib,
    timed,
)
from bench.generate import Calendar, bench_now, generate

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
DOCS = REPO / "docs" / "benchmarks.md"
FULL_MIN_FREE_GB = 20


@dataclass(frozen=True)
class Profile:
    """Sizes and durations of one profile."""

    name: str
    clients: int
    small_clients: int  # ~10k check-ins: the detect-misses floor
    misses_due: int
    misses_reps: int
    busy_due: int
    http_seconds: float
    http_connections: int
    feed_requests: int
    dispatch_messages: int
    mps: float
    mps_messages: int
    import_meetings: int
    scheduler_seconds: float
    history_days: int = 56  # check-in history per client (bench.generate's default: 8 weeks)
    steps: tuple[str, ...] = ()  # only these steps (all when empty)
    backends: tuple[str, ...] = ("sqlite", "postgresql")


PROFILES = {
    # Quick: sized to finish both backends in about three minutes on a quiet 2-core machine;
    # the engine's per-row cost (not the queries) is what bounds these sizes.
    "quick": Profile("quick", clients=400, small_clients=75, misses_due=200, misses_reps=2,
                     busy_due=500, http_seconds=5, http_connections=4, feed_requests=100,
                     dispatch_messages=200, mps=50, mps_messages=100, import_meetings=10_000,
                     scheduler_seconds=30),
    "full": Profile("full", clients=100_000, small_clients=75, misses_due=1_000, misses_reps=3,
                    busy_due=5_000, http_seconds=10, http_connections=8, feed_requests=1_000,
                    dispatch_messages=5_000, mps=50, mps_messages=300, import_meetings=10_000,
                    scheduler_seconds=900),
    # Scale: 100,000 clients on PostgreSQL with one week of history (≈1.7M check-ins, as if
    # retention had purged the rest): the sweeps' due-row cost and the scheduler's memory at
    # the size the goals name, in minutes rather than the full profile's hours.
    "scale": Profile("scale", clients=100_000, small_clients=75, misses_due=1_000, misses_reps=2,
                     busy_due=5_000, http_seconds=5, http_connections=8, feed_requests=200,
                     dispatch_messages=1_000, mps=50, mps_messages=150, import_meetings=10_000,
                     scheduler_seconds=900, history_days=7,
                     steps=("detect_misses", "plan_ahead", "busy_minute", "scheduler_rss"),
                     backends=("postgresql",)),
}  # fmt: skip


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def available(module: str, name: str) -> Any | None:
    """Return another engineer's entry point, or None while it has not landed."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def not_available(key: str, what: str, backend: str, missing: str) -> Row:
    return Row(key, what, backend, status=NOT_AVAILABLE, note=f"{missing} has not landed")


def guarded(key: str, what: str, backend: str, fn: Callable[[], list[Row]]) -> list[Row]:
    """Run one measurement; a crash becomes an `error` row, never a number."""
    log(f"{backend}: {what}")
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - one broken measurement must not hide the others
        traceback.print_exc()
        return [Row(key, what, backend, status="error", note=f"{type(exc).__name__}: {exc}"[:300])]


# ---------------------------------------------------------------------------------------------
# The app and its database


class Bench:
    """One backend's benchmark database(s), the app on them, and the shared clock."""

    def __init__(self, backend: str, url: str, small_url: str, now: datetime, profile: Profile):
        from bench.wsgi_app import create_bench_app

        self.backend = backend
        self.url = url
        self.small_url = small_url
        self.now = now
        self.profile = profile
        self.app = create_bench_app({**APP_OVERRIDES, "DATABASE_URL": url})
        self.small_app = create_bench_app({**APP_OVERRIDES, "DATABASE_URL": small_url})
        self.engine: Engine = create_engine(url)
        self.small_engine: Engine = create_engine(small_url)
        # As the scheduler process does at startup (run_scheduler): the long-lived heap is
        # frozen, so sweeps are timed as the scheduler runs them.
        gc.freeze()
        self.population: dict[str, int] = {}
        self.feed: tuple[str, int] | None = None  # (token, series) once the feed client exists
        self.sid_prefix = "SMbench"

    def close(self) -> None:
        from service.db import db

        for app in (self.app, self.small_app):
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        self.engine.dispose()
        self.small_engine.dispose()


def _t(name: str) -> Any:
    from service.db import db

    return db.metadata.tables[name]


def _connect(b: Bench) -> None:
    """Open the app's pooled connection before a timer starts, as each floor's engine has.

    A scheduler's connection is long open; connecting (on SQLite, the file's switch to WAL)
    is no part of a sweep.
    """
    from service.db import db

    with b.app.app_context():
        db.session.execute(select(1))
        db.session.remove()
    _settle(b.engine)


def _settle(engine: Engine) -> None:
    """Start a timed region with an empty SQLite write-ahead log, as the floor's insert does.

    Otherwise the setup's own writes (the busy minute's 500 due rows: ~500 pages) wait in
    the log and the measured sweep's commit pays their checkpoint. No-op on PostgreSQL.
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _count(engine: Engine, table: str, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(_t(table)).where(*where)) or 0)


def _snapshot(b: Bench) -> Path | None:
    """SQLite: copy the database file as the timed step is about to find it (its write-ahead
    log just checkpointed into it), for `_insert_floor`. None on PostgreSQL."""
    if b.engine.dialect.name != "sqlite":
        return None
    _settle(b.engine)
    path = Path(str(b.engine.url.database))
    copy = path.with_name(f"{path.stem}-floor{path.suffix}")
    shutil.copyfile(path, copy)
    # On disk before any timer: else the floor's first checkpoint flushes the whole copy.
    with copy.open("rb+") as written:
        os.fsync(written.fileno())
    return copy


def _insert_floor(
    engine: Engine, table: str, where: Any, snapshot: Path | None
) -> tuple[float, int, float | None]:
    """Time inserting the rows `where` selects (executemany + commit) into the database as the
    measured step found it: the step's rows go into the same tables and indexes the step
    wrote them into. Returns (seconds, rows, the delete-and-reinsert floor's seconds or None).

    On SQLite that database is `snapshot`, the file copied just before the step; the earlier
    delete-and-reinsert floor is measured after it on the bench database, for comparison: it
    puts the rows back into the very index slots their delete has just emptied (734 pages
    written for 500 outbox rows, where the same insert into the state before the step writes
    1,934), so it is cheaper than any insert the step could make. On PostgreSQL the floor is
    still delete-and-reinsert: a copy (CREATE DATABASE … TEMPLATE) needs every session to the
    database closed, the measured step's included, and takes minutes at 100,000 clients.
    There the reinsert is the slower of the two (3 quick runs with a copy: plan ahead 75-92
    against 83-109 ms, busy minute 52-60 against 54-100 ms): deleted rows' space is not
    reused before a vacuum. So PostgreSQL's ratios are, if anything, too kind to the sweeps.
    """
    if snapshot is None:
        seconds, n = _reinsert_floor(engine, table, where)
        return seconds, n, None
    t = _t(table)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(t).where(where)).mappings()]
    floor_engine = create_engine(f"sqlite:///{snapshot}")
    try:
        with floor_engine.connect() as conn:
            # As warm as a long-lived connection can be: the table and each of its indexes read.
            for name in _indexes(conn, table):
                conn.exec_driver_sql(f'SELECT count(*) FROM "{table}" INDEXED BY "{name}"').all()
            conn.exec_driver_sql(f'SELECT count(*), sum(length(id)) FROM "{table}"').all()
            conn.commit()
            started = time.perf_counter()
            if rows:
                conn.execute(t.insert(), rows)
            conn.commit()
            seconds = time.perf_counter() - started
    finally:
        floor_engine.dispose()
        for leftover in (snapshot, Path(f"{snapshot}-wal"), Path(f"{snapshot}-shm")):
            leftover.unlink(missing_ok=True)
    reinsert, _ = _reinsert_floor(engine, table, where)
    return seconds, len(rows), reinsert


def _indexes(conn: Any, table: str) -> list[str]:
    found = conn.exec_driver_sql(f"SELECT name FROM pragma_index_list('{table}')")
    return [name for (name,) in found]


def _floor_note(floor: float, reinsert: float | None, measured: float) -> str:
    if reinsert is None:
        return "floor: the rows deleted and re-inserted"
    return (f"floor: the rows inserted into a copy of the database taken just before; "
            f"deleted and re-inserted instead, {fmt_s(reinsert)} (×{measured / reinsert:.2f})")  # fmt: skip


def _reinsert_floor(engine: Engine, table: str, where: Any) -> tuple[float, int]:
    """Read the rows `where` selects, delete them, and time re-inserting them (executemany + commit)."""
    t = _t(table)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(t).where(where)).mappings()]
        ids = [r["id"] for r in rows]
        for start in range(0, len(ids), 5000):
            conn.execute(delete(t).where(t.c.id.in_(ids[start : start + 5000])))
        conn.commit()
    _settle(engine)
    with engine.connect() as conn:
        started = time.perf_counter()
        if rows:
            conn.execute(t.insert(), rows)
        conn.commit()
        return time.perf_counter() - started, len(rows)


# ---------------------------------------------------------------------------------------------
# Sweeps


def measure_plan(b: Bench) -> list[Row]:
    from service.db import db
    from service.jobs import sweeps

    what = "plan ahead 24 h for all clients"
    now = b.now
    _connect(b)
    snapshot = _snapshot(b)
    with b.app.app_context():
        seconds, created = timed(lambda: sweeps.plan_ahead(now))
        db.session.remove()
    ct = _t("checkins")
    floor, n, reinsert = _insert_floor(b.engine, "checkins", ct.c.created_at == now, snapshot)
    ratio = seconds / floor if floor else None
    row = Row("plan_ahead", what, b.backend,
              value=f"{created / seconds:,.0f} check-ins/s ({created:,} in {fmt_s(seconds)})",
              floor=f"{n / floor:,.0f} rows/s ({fmt_s(floor)})", ratio=ratio,
              goal="≤ 2× floor time",
              note=f"{b.population.get('clients', 0):,} clients; the sweep also appends one event "
                   f"per check-in, the floor inserts check-ins only; {_floor_note(floor, reinsert, seconds)}",
              data={"seconds": seconds, "floor_seconds": floor, "created": created,
                    "reinsert_floor_seconds": reinsert})  # fmt: skip
    return [row.judge(ratio is not None and ratio <= 2)]


class DueRows:
    """1,000 recent check-ins turned back into closed-window prompts, restorable between runs.

    Recent, but older than any check-in's window (the longest a generated one has is 24 h):
    a re-armed check-in whose prompt went out less than a window ago has its window extended
    by the sweep, not closed (escalation.close_outcome). At 100,000 clients the 1,000 most
    recent answered check-ins are all from the last minutes, so without this bound the sweep
    closed none of them and the row timed an empty sweep.
    """

    AGE = timedelta(days=2)

    def __init__(self, engine: Engine, count: int, now: datetime) -> None:
        self.engine, self.now = engine, now
        ct = _t("checkins")
        with engine.connect() as conn:
            self.saved = [
                tuple(r)
                for r in conn.execute(
                    select(ct.c.id, ct.c.status, ct.c.closes_at, ct.c.updated_at)
                    .where(ct.c.status.in_(("confirmed", "declined", "missed")))
                    .where(ct.c.event_at <= now - self.AGE)
                    .order_by(ct.c.event_at.desc())
                    .limit(count)
                )
            ]
            self.ids = [r[0] for r in self.saved]
            self.event_mark = conn.scalar(select(func.max(_t("events").c.id))) or 0

    def arm(self) -> None:
        ct, ev, al, ms = _t("checkins"), _t("events"), _t("alerts"), _t("messages")
        with self.engine.begin() as conn:
            conn.execute(delete(ev).where(ev.c.id > self.event_mark))
            conn.execute(delete(al).where(al.c.created_at == self.now))
            conn.execute(delete(ms).where(ms.c.created_at == self.now, ms.c.purpose == "alert"))
            conn.execute(
                update(ct)
                .where(ct.c.id.in_(self.ids))
                .values(
                    status="prompted", skip_reason=None, closes_at=self.now - timedelta(minutes=1)
                )
            )

    def restore(self) -> None:
        self.arm()
        ct = _t("checkins")
        with self.engine.begin() as conn:
            for cid, status, closes_at, updated_at in self.saved:
                conn.execute(
                    update(ct).where(ct.c.id == cid)
                    .values(status=status, closes_at=closes_at, updated_at=updated_at)
                )  # fmt: skip


def _drain(fn: Callable[[datetime], int], now: datetime, limit: int = 200) -> tuple[int, int]:
    """Call a sweep until it finds nothing; return (items, calls)."""
    total = calls = 0
    while calls < limit:
        n = fn(now)
        calls += 1
        total += n
        if n == 0:
            break
    return total, calls


def measure_misses(b: Bench) -> list[Row]:
    from service.db import db
    from service.jobs import sweeps

    what = f"detect misses ({b.profile.misses_due:,} due)"
    now = b.now + timedelta(seconds=1)
    results: dict[str, dict[str, Any]] = {}
    for label, app, engine in (("small", b.small_app, b.small_engine), ("big", b.app, b.engine)):
        due = DueRows(engine, b.profile.misses_due, now)
        times = []
        closed = calls = 0
        try:
            for _ in range(b.profile.misses_reps):
                due.arm()
                with app.app_context():
                    seconds, (closed, calls) = timed(
                        lambda: _drain(sweeps.detect_misses_and_skips, now)  # noqa: B023
                    )
                    db.session.remove()
                times.append(seconds)
        finally:
            due.restore()
        results[label] = {"seconds": min(times), "all": times, "closed": closed, "calls": calls,
                          "checkins": _count(engine, "checkins")}  # fmt: skip
    small, big = results["small"], results["big"]
    ratio = big["seconds"] / small["seconds"]
    row = Row("detect_misses", what, b.backend,
              value=f"{fmt_s(big['seconds'])} at {big['checkins']:,} check-ins",
              floor=f"{fmt_s(small['seconds'])} at {small['checkins']:,} check-ins", ratio=ratio,
              goal="ratio ≤ 1.5",
              note=f"{big['closed']:,} closed in {big['calls']} sweep calls (BATCH=500); "
                   f"best of {b.profile.misses_reps}",
              data=results)  # fmt: skip
    # Timing a sweep that closed fewer rows than were armed would not be this row.
    every = all(r["closed"] == b.profile.misses_due for r in results.values())
    if not every:
        row.note += f"; INVALID: the sweep closed {small['closed']:,} and {big['closed']:,} of {b.profile.misses_due:,}"
    return [row.judge(ratio <= 1.5 and every)]


def _busy_rows(b: Bench, now: datetime) -> list[dict[str, Any]]:
    """Synthesize `busy_due` check-ins due this minute: 1/5 reminders, the rest prompts."""
    from service.db import new_id
    from service.quiet_hours import QuietHours, is_quiet
    from service.schedule import get_zone, resolve_local

    cl, mp, cm = _t("clients"), _t("meeting_plans"), _t("commitments")
    with b.engine.connect() as conn:
        clients = {
            r.id: r
            for r in conn.execute(select(cl.c.id, cl.c.timezone, cl.c.quiet_start, cl.c.quiet_end))
            if not is_quiet(now, r.timezone, QuietHours.from_strings(r.quiet_start, r.quiet_end))
        }
        plans = [r for r in conn.execute(select(mp)) if r.client_id in clients]
        commitments = [
            r for r in conn.execute(select(cm).where(cm.c.kind != "meeting_quota"))
            if r.client_id in clients
        ]  # fmt: skip
    want_reminders = b.profile.busy_due // 5
    want_prompts = b.profile.busy_due - want_reminders
    if not plans and not commitments:
        raise RuntimeError("no awake clients at this instant")
    out: list[dict[str, Any]] = []

    def add(src: Any, source_type: str, k: int, reminder: bool) -> None:
        zone = clients[src.client_id].timezone
        local_day = now.astimezone(get_zone(zone)).date() + timedelta(days=70 + 7 * k)
        occurrence = datetime(local_day.year, local_day.month, local_day.day, 12, 0)
        event_at = resolve_local(occurrence, get_zone(zone))
        if source_type == "meeting_plan":
            window = timedelta(hours=src.confirm_window_hours)
            verifier = src.verifier_contact_id
        else:
            window = timedelta(minutes=src.grace_minutes)
            verifier = None
        due = now + timedelta(hours=2) if reminder else now - timedelta(seconds=20)
        out.append({
            "id": new_id("ci"), "practice_id": src.practice_id, "client_id": src.client_id,
            "source_type": source_type, "source_id": src.id, "occurrence": occurrence,
            "event_at": event_at, "due_at": due, "closes_at": due + window,
            "reminder_at": now - timedelta(seconds=20) if reminder else None,
            "verifier_contact_id": verifier, "status": "scheduled",
            "created_at": now - timedelta(days=1), "updated_at": now - timedelta(days=1),
        })  # fmt: skip

    for i in range(want_reminders):
        add(plans[i % len(plans)], "meeting_plan", i // len(plans), True)
    sources = [("commitment", c) for c in commitments] + [("meeting_plan", p) for p in plans]
    for i in range(want_prompts):
        source_type, src = sources[i % len(sources)]
        add(src, source_type, 10 + i // len(sources), False)
    return out


def measure_busy_minute(b: Bench) -> list[Row]:
    from service.db import db
    from service.jobs import sweeps

    what = f"prompt + reminder sweep, one busy minute ({b.profile.busy_due:,} due)"
    now = b.now + timedelta(seconds=2)
    rows = _busy_rows(b, now)
    with b.engine.begin() as conn:
        conn.execute(_t("checkins").insert(), rows)
    _connect(b)
    snapshot = _snapshot(b)
    with b.app.app_context():
        seconds, (queued, calls) = timed(lambda: _drain(sweeps.send_reminders_and_prompts, now))
        db.session.remove()
    ms = _t("messages")
    outbox = _count(
        b.engine, "messages", ms.c.created_at == now, ms.c.purpose.in_(("reminder", "prompt"))
    )
    sent = (ms.c.created_at == now) & ms.c.purpose.in_(("reminder", "prompt"))
    floor, n, reinsert = _insert_floor(b.engine, "messages", sent, snapshot)
    ratio = seconds / floor if floor else None
    awake = len({r["client_id"] for r in rows})
    row = Row("busy_minute", what, b.backend, value=f"{fmt_s(seconds)} ({outbox:,} texts queued)",
              floor=f"{fmt_s(floor)} ({n:,} outbox rows)", ratio=ratio, goal="≤ 3× floor time",
              note=f"{calls} sweep calls (each loops over batches of 500 until one comes back short); "
                   f"{awake:,} awake clients; {_floor_note(floor, reinsert, seconds)}",
              data={"seconds": seconds, "floor_seconds": floor, "queued": queued,
                    "outbox": outbox, "calls": calls,
                    "reinsert_floor_seconds": reinsert})  # fmt: skip
    return [row.judge(ratio is not None and ratio <= 3)]


# ---------------------------------------------------------------------------------------------
# HTTP: gunicorn on 127.0.0.1


DEPLOY_CONFIG = REPO / "deploy" / "gunicorn.conf.py"


# The feed poll and the webhook are measured beside their floors in this many alternating
# slices (fewer when the profile's http_seconds is shorter: a wrk run lasts whole seconds).
HTTP_SLICES = 5


def gunicorn_setup() -> str:
    """Describe the workers deploy/gunicorn.conf.py gives gunicorn() (for the rows' notes)."""
    conf = runpy.run_path(str(DEPLOY_CONFIG))  # reads this environment, as gunicorn() passes it
    kind, threads = conf.get("worker_class", "sync"), int(conf.get("threads", 1))
    shape = f"{conf['workers']} {kind} workers" + (f" × {threads} threads" if threads > 1 else "")
    return f"gunicorn -c deploy/gunicorn.conf.py ({shape})"


@contextmanager
def gunicorn(url: str, prerendered: Path) -> Iterator[str]:
    """Serve the bench app with gunicorn as deployed (deploy/gunicorn.conf.py: its workers,
    worker class and threads) on a free loopback port; yield its base URL.

    The access log is off, as it always was here: the floors and the routes they are
    compared with are served by this same server, so neither pays for log lines.
    """
    port = free_port()
    env = {**os.environ,
           "BENCH_APP_OVERRIDES": json.dumps({**APP_OVERRIDES, "DATABASE_URL": url}),
           "BENCH_PRERENDERED_FEED": str(prerendered),
           "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_ACCESS_LOG": ""}  # fmt: skip
    logfile = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY_CONFIG), "--log-level", "warning",
         "bench.wsgi_app:app"],
        cwd=REPO, env=env, stdout=logfile, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/bench/constant", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"gunicorn did not start: {Path(logfile.name).read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logfile.close()
        os.unlink(logfile.name)


def _feed_client(b: Bench, now: datetime) -> tuple[str, int]:
    """Give one client 10 series and about 100 exceptions; return (feed token, series)."""
    from service import feeds
    from service.db import db, new_id
    from service.models import CheckIn, Client, Commitment, MeetingPlan

    with b.app.app_context():
        client = db.session.scalars(select(Client).order_by(Client.id).limit(1)).one()
        plans = list(
            db.session.scalars(select(MeetingPlan).where(MeetingPlan.client_id == client.id))
        )
        meetings = [p.meeting for p in plans]
        cal = Calendar(now)
        created = now - timedelta(days=90)
        extra_meetings = [m for m in db.session.scalars(
            select(MeetingPlan.meeting_id).distinct().limit(20)) if m not in {x.id for x in meetings}]  # fmt: skip
        for meeting_id in extra_meetings[:2]:
            db.session.add(MeetingPlan(id=new_id("mp"), practice_id=client.practice_id,
                                       client_id=client.id, meeting_id=meeting_id,
                                       starts_on=created.date(), planned_until=now,
                                       created_at=created, updated_at=created))  # fmt: skip
        for k, hhmm in enumerate(("07:30", "12:30", "18:00")):
            db.session.add(Commitment(id=new_id("cm"), practice_id=client.practice_id,
                                      client_id=client.id, kind="practice", title=f"Practice {k}",
                                      rrule="FREQ=DAILY", time=hhmm, starts_on=created.date(),
                                      planned_until=now, created_at=created, updated_at=created))  # fmt: skip
        db.session.flush()
        series = [
            *db.session.scalars(select(MeetingPlan).where(MeetingPlan.client_id == client.id)),
            *db.session.scalars(select(Commitment).where(Commitment.client_id == client.id,
                                                         Commitment.kind != "meeting_quota")),
        ]  # fmt: skip
        for src in series:
            source_type = "meeting_plan" if isinstance(src, MeetingPlan) else "commitment"
            existing = {
                c.occurrence: c for c in db.session.scalars(
                    select(CheckIn).where(CheckIn.source_type == source_type, CheckIn.source_id == src.id))
            }  # fmt: skip
            for c in existing.values():
                if c.status in ("skipped", "excused", "cancelled"):
                    c.status = "confirmed"
            if isinstance(src, MeetingPlan):
                m = src.meeting
                occs = cal.occurrences(m.timezone, (m.day - 1) % 7, m.time)
            else:
                occs = cal.occurrences(client.timezone, None, src.time)
            for local, at in list(occs)[-10:]:
                row = existing.get(local)
                if row is None:
                    row = CheckIn(id=new_id("ci"), practice_id=client.practice_id,
                                  client_id=client.id, source_type=source_type, source_id=src.id,
                                  occurrence=local, event_at=at, due_at=at, closes_at=at,
                                  created_at=at, updated_at=at)  # fmt: skip
                    db.session.add(row)
                row.status = "excused"
                row.updated_at = now
        url = feeds.rotate_client_feed(client, now=now)
        db.session.commit()
        return url.rsplit("/", 1)[1].removesuffix(".ics"), len(series)


def measure_http(b: Bench, tmp: Path) -> list[Row]:
    """Feed render latency, feed polls with ETag, and the inbound webhook, under gunicorn."""
    rows: list[Row] = []
    token, series = b.feed or _feed_client(b, b.now)
    b.feed = (token, series)
    prerendered = tmp / f"prerendered-{b.backend}.ics"
    prerendered.write_bytes(b"")
    p = b.profile
    setup = gunicorn_setup()
    with gunicorn(b.url, prerendered) as base:
        feed_url = f"{base}/feeds/{token}.ics"
        first = requests.get(feed_url, timeout=30)
        first.raise_for_status()
        prerendered.write_bytes(first.content)
        etag = first.headers["ETag"]
        unfolded = first.text.replace("\r\n ", "").replace("\n ", "")  # RFC 5545 folding
        exdates = sum(
            line.count(",") + 1 for line in unfolded.splitlines() if line.startswith("EXDATE")
        )
        # Warm both routes in both workers, then alternate so load drifts hit both alike.
        loadgen.sequential_latencies(feed_url, 10)
        loadgen.sequential_latencies(f"{base}/bench/prerendered.ics", 10)
        feed_ms: list[float] = []
        file_ms: list[float] = []
        for _ in range(max(1, p.feed_requests // 50)):
            feed_ms += loadgen.sequential_latencies(feed_url, 50)
            file_ms += loadgen.sequential_latencies(f"{base}/bench/prerendered.ics", 50)
        p50, p99 = percentile(feed_ms, 50), percentile(feed_ms, 99)
        f50, f99 = percentile(file_ms, 50), percentile(file_ms, 99)
        rows.append(Row("feed_render", f"feed render ({series} series, {exdates} exceptions)",
                        b.backend, value=f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
                        floor=f"p50 {f50:.1f} ms, p99 {f99:.1f} ms", ratio=p50 / f50,
                        goal="p50 ≤ 5 ms",
                        note=f"{len(feed_ms)} sequential GETs, {len(first.content):,} bytes, gunicorn",
                        data={"p50": p50, "p99": p99, "floor_p50": f50, "floor_p99": f99,
                              "bytes": len(first.content)}).judge(p50 <= 5))  # fmt: skip

        # The constant route and the poll in turn, in short slices of the same gunicorn, so a
        # change of load during the run reaches both alike; the rate is summed requests/time.
        measured = loadgen.alternate(
            {"constant": loadgen.Slice(f"{base}/bench/constant"),
             "polls": loadgen.Slice(feed_url, headers={"If-None-Match": etag})},
            seconds=p.http_seconds, connections=p.http_connections, slices=HTTP_SLICES)  # fmt: skip
        constant, polls = (loadgen.combine(measured[k]) for k in ("constant", "polls"))
        ratio = polls.rps / constant.rps if constant.rps else None
        rows.append(Row("feed_poll", "feed poll with ETag (304)", b.backend, value=polls.label(),
                        floor=constant.label(), ratio=ratio, goal="≥ 70% of floor rate",
                        note=f"{polls.requests:,} requests, {polls.errors} errors; "
                             f"{p.http_connections} connections, {setup}; "
                             f"{len(measured['polls'])} alternating slices of each",
                        data={"polls": vars(polls), "constant": vars(constant)})
                    .judge(ratio is not None and ratio >= 0.7 and polls.errors == 0))  # fmt: skip
        rows += measure_webhook(b, base)
    return rows


def measure_webhook(b: Bench, base: str) -> list[Row]:
    what = "inbound webhook with signature check"
    # An unsigned POST: 403 once the webhook exists, 404 before it has landed.
    probe = requests.post(f"{base}/twilio/inbound", data={}, timeout=10)
    if probe.status_code == 404:
        return [not_available("webhook", what, b.backend, "POST /twilio/inbound")]
    from twilio.request_validator import RequestValidator

    from bench.common import PUBLIC_BASE_URL, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN

    validator = RequestValidator(TWILIO_AUTH_TOKEN)
    p = b.profile
    cl, pr = _t("clients"), _t("practices")
    with b.engine.connect() as conn:
        phones = [r[0] for r in conn.execute(select(cl.c.phone).order_by(cl.c.id).limit(2000))]
        to = conn.scalar(select(pr.c.sms_from_number).limit(1))
    # Every request needs its own MessageSid (a repeated one is Twilio's retry, answered from
    # what is stored), and wrk stops a thread that has used up its requests but still divides
    # by the whole run: the pool holds more than the constant route serves in that time, so
    # the rate is never capped by it (it was: 2,000 requests for 3 s read as 667 req/s at most).
    reqs = []
    for i in range(max(2000, int(p.http_seconds * 8000))):
        params = {"MessageSid": f"{b.sid_prefix}{i:026d}", "AccountSid": TWILIO_ACCOUNT_SID,
                  "From": phones[i % len(phones)], "To": to, "Body": ("YES", "NO", "Y", "yes")[i % 4],
                  "NumMedia": "0"}  # fmt: skip
        signature = validator.compute_signature(f"{PUBLIC_BASE_URL}/twilio/inbound", params)
        body = "&".join(f"{k}={requests.utils.quote(v, safe='')}" for k, v in params.items())
        reqs.append(("POST", "/twilio/inbound",
                     {"Content-Type": "application/x-www-form-urlencoded",
                      "X-Twilio-Signature": signature}, body))  # fmt: skip
    # The webhook and its floor in turn, in short slices (as the poll and its floor); each
    # webhook slice sends its own part of the pool, so no MessageSid is sent twice.
    slices = loadgen.slice_count(p.http_seconds, HTTP_SLICES)
    part = len(reqs) // slices
    floor_reqs = [("POST", "/bench/constant", h, body) for _, _, h, body in reqs[:50]]
    measured = loadgen.alternate(
        {"webhook": loadgen.Slice(f"{base}/twilio/inbound", max_requests=part,
                                  requests_=lambda k: reqs[k * part : (k + 1) * part]),
         "floor": loadgen.Slice(f"{base}/bench/constant", requests_=lambda _k: floor_reqs)},
        seconds=p.http_seconds, connections=p.http_connections, slices=slices)  # fmt: skip
    result, floor = loadgen.combine(measured["webhook"]), loadgen.combine(measured["floor"])
    exhausted = any(r.requests >= part for r in measured["webhook"])
    ratio = result.rps / floor.rps if floor.rps else None
    return [Row("webhook", what, b.backend, value=result.label(), floor=floor.label(), ratio=ratio,
                goal="≥ 50% of floor rate",
                note=f"{result.requests:,} signed requests from {len(phones):,} numbers, "
                     f"{result.errors} errors"
                     + f"; {len(measured['webhook'])} alternating slices of each"
                     + ("; a slice used every request prepared for it: the rate is a lower bound"
                        if exhausted else ""),
                data={"webhook": vars(result), "constant_post": vars(floor)})
            .judge(ratio is not None and ratio >= 0.5 and result.errors == 0)]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Dispatch, import, scheduler


def measure_dispatch(b: Bench) -> list[Row]:
    what = "dispatch to fake Twilio (real twilio library)"
    dispatch_outbox = available("service.notifications.dispatch", "dispatch_outbox")
    if dispatch_outbox is None or not (REPO / "tests" / "fake_twilio.py").exists():
        return [not_available("dispatch", what, b.backend, "service/notifications/dispatch.py")]
    from bench import dispatch_bench

    return dispatch_bench.measure(b, dispatch_outbox)


def measure_import(b: Bench, tmp: Path) -> list[Row]:
    what = f"import a {b.profile.import_meetings:,}-meeting TSML feed"
    make_feed = available("bench.make_tsml_feed", "make_feed")
    importer = available("service.meeting_import.sources", "import_source")
    if make_feed is None or importer is None:
        return [
            not_available("import", what, b.backend, "bench/make_tsml_feed.py or import_source")
        ]
    feed = tmp / f"tsml-{b.profile.import_meetings}.json"
    if not feed.exists():
        feed.write_text(json.dumps(make_feed(b.profile.import_meetings)))
    with b.engine.connect() as conn:
        practice = conn.scalar(select(_t("practices").c.id).order_by(_t("practices").c.id).limit(1))

    def probe(*args: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "bench.import_probe", "--feed", str(feed), *args],
                             cwd=REPO, capture_output=True, text=True, timeout=1800, check=False)  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-1500:])
        return json.loads(out.stdout.strip().splitlines()[-1])

    floor = probe("--mode", "json")
    result = probe("--mode", "import", "--db", b.url, "--practice", practice)
    ratio = result["seconds"] / floor["seconds"]
    growth_mb, floor_mb = result["growth_kib"] / 1024, floor["growth_kib"] / 1024
    bounded = growth_mb <= max(5 * floor_mb, 64)
    return [Row("import", what, b.backend,
                value=f"{fmt_s(result['seconds'])}, peak +{growth_mb:.0f} MB RSS",
                floor=f"{fmt_s(floor['seconds'])}, peak +{floor_mb:.0f} MB RSS", ratio=ratio,
                goal="≤ 10× floor time; memory ≤ 5× json.loads's",
                note=f"{feed.stat().st_size / 1e6:.1f} MB file; fresh process each",
                data={"import": result, "json": floor})
            .judge(ratio <= 10 and bounded)]  # fmt: skip


SWEEP_NAMES = ("plan_ahead", "send_reminders_and_prompts", "dispatch", "detect_misses_and_skips",
               "evaluate_quotas", "escalate_and_notify", "deliver_webhooks", "send_digests",
               "refresh_meeting_feeds", "purge_retention")  # fmt: skip


def at_scale_of(b: Bench) -> bool:
    return b.population.get("clients", 0) >= 100_000


def measure_scheduler(b: Bench) -> list[Row]:
    what = f"scheduler process at {b.population.get('clients', 0):,} clients"
    # PLAN_HORIZON_HOURS stays at the bench's 24 h, so the first planning sweep finds the
    # steady state (every source already planned) rather than re-planning everyone.
    env = {**os.environ, **{k: str(v) for k, v in APP_OVERRIDES.items()},
           "DATABASE_URL": b.url, "LOG_LEVEL": "INFO"}  # fmt: skip
    logfile = tempfile.NamedTemporaryFile(prefix="bench-scheduler-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "run"],
                            cwd=REPO, env=env, stdout=logfile, stderr=subprocess.STDOUT)  # fmt: skip
    peak = 0
    done: set[str] = set()
    started = time.monotonic()
    try:
        while time.monotonic() - started < b.profile.scheduler_seconds and proc.poll() is None:
            peak = max(peak, rss_peak_kib(proc.pid) or 0)
            text_ = Path(logfile.name).read_text(errors="replace")
            done = {
                n for n in SWEEP_NAMES if f"sweep {n}:" in text_ or f"sweep {n} failed" in text_
            }
            if len(done) == len(SWEEP_NAMES):
                break
            time.sleep(0.5)
        peak = max(peak, rss_peak_kib(proc.pid) or 0)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_text = Path(logfile.name).read_text(errors="replace")
        logfile.close()
        os.unlink(logfile.name)
    failed = [n for n in SWEEP_NAMES if f"sweep {n} failed" in log_text]
    errors = [line.strip() for line in log_text.splitlines()
              if line and not line.startswith((" ", "Traceback")) and "Error" in line][:3]  # fmt: skip
    elapsed = time.monotonic() - started
    mb = peak / 1024
    note = (f"first round of every sweep: {len(done)}/{len(SWEEP_NAMES)} finished in "
            f"{elapsed:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))  # fmt: skip
    if not at_scale_of(b):
        note += "; measured at this size, not at 100,000 clients"
    row = Row("scheduler_rss", what, b.backend, value=f"peak RSS {mb:.0f} MB", goal="≤ 300 MB",
              note=note, data={"peak_kib": peak, "sweeps_done": sorted(done), "failed": failed,
                               "errors": errors})  # fmt: skip
    at_scale = b.population.get("clients", 0) >= 100_000
    if not at_scale and b.profile.name in ("full", "scale"):
        note += "; not the 100,000-client size the goal is about"
    return [row.judge(mb <= 300 if at_scale else None)]


# ---------------------------------------------------------------------------------------------
# Orchestration


# Proposed fixes that live in the database, tried on the bench databases only (never in
# service/): the owning engineers decide whether to adopt them.
FIXES = {
    "wal": "SQLite journal_mode=WAL",
    "late-reply-index": "partial index checkins(closes_at) WHERE status='missed'",
}


def apply_fixes(url: str, fixes: list[str]) -> None:
    engine = create_engine(url)
    with engine.connect() as conn:
        if "wal" in fixes and engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        if "late-reply-index" in fixes:
            conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_bench_checkins_missed_closes "
                                 "ON checkins (closes_at) WHERE status = 'missed'")  # fmt: skip
            conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()


def requeue(b: Bench) -> int:
    """Put the busy minute's texts back in the outbox, so a second dispatch pass has work."""
    ms = _t("messages")
    with b.engine.begin() as conn:
        return conn.execute(
            update(ms)
            .where(ms.c.created_at == b.now + timedelta(seconds=2), ms.c.status != "queued")
            .values(status="queued", provider_sid=None, claimed_at=None, sent_at=None,
                    delivered_at=None, error_code=None, error_message=None, attempts=0)
        ).rowcount  # fmt: skip


def ab_pass(b: Bench, fixes: list[str], tmp: Path) -> list[Row]:
    """Apply the proposed fixes to the same databases and measure the I/O-bound rows again."""
    b.close()
    for u in (b.url, b.small_url):
        apply_fixes(u, fixes)
    applied = [f for f in fixes if f != "wal" or b.backend == "sqlite"]
    label = f"{b.backend} + {', '.join(applied)}"
    after = Bench(label, b.url, b.small_url, b.now, b.profile)
    after.population, after.feed, after.sid_prefix = b.population, b.feed, "SMfixed"
    requeue(after)
    rows: list[Row] = []
    try:
        rows += guarded("dispatch", "dispatch", label, lambda: measure_dispatch(after))
        rows += guarded("http", "feeds and webhook under gunicorn", label,
                        lambda: measure_http(after, tmp))  # fmt: skip
    finally:
        after.close()
    return rows


def run_backend(
    backend: str,
    profile: Profile,
    stack: ExitStack,
    tmp: Path,
    fixes: list[str] | None = None,
    ab: list[str] | None = None,
    only: set[str] | None = None,
) -> list[Row]:
    if backend == "postgresql":
        url = stack.enter_context(private_postgres("steadfast_bench"))
        small_url = stack.enter_context(private_postgres("steadfast_bench_small"))
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
        small_url = f"sqlite:///{tmp / 'bench-small.db'}"
    now = bench_now()
    log(f"{backend}: generating {profile.clients:,} clients (+{profile.small_clients} small)")
    report = generate(url, profile.clients, now=now, history_days=profile.history_days)
    small_report = generate(small_url, profile.small_clients, now=now, seed=2)
    if fixes:
        for u in (url, small_url):
            apply_fixes(u, fixes)
        applied = [f for f in fixes if f != "wal" or backend == "sqlite"]
        backend = f"{backend} + {', '.join(applied)}" if applied else backend
    gen = Row("generate", f"generate {profile.clients:,} clients", backend,
              value=f"{sum(report.rows.values()):,} rows in {fmt_s(report.total_seconds)} "
                    f"({sum(report.rows.values()) / report.total_seconds:,.0f} rows/s)",
              note=f"{report.rows['checkins']:,} check-ins, {report.rows['messages']:,} messages",
              data={"rows": dict(report.rows), "seconds": dict(report.seconds),
                    "index_seconds": report.index_seconds, "total_seconds": report.total_seconds,
                    "small_rows": dict(small_report.rows)}).judge(None)  # fmt: skip
    b = Bench(backend, url, small_url, now, profile)
    b.population = dict(report.rows)
    rows = [gen]
    try:
        steps: list[tuple[str, str, Callable[[], list[Row]]]] = [
            ("detect_misses", "detect misses", lambda: measure_misses(b)),
            ("plan_ahead", "plan ahead", lambda: measure_plan(b)),
            ("busy_minute", "busy minute", lambda: measure_busy_minute(b)),
            ("dispatch", "dispatch", lambda: measure_dispatch(b)),
            ("http", "feeds and webhook under gunicorn", lambda: measure_http(b, tmp)),
            ("import", "TSML import", lambda: measure_import(b, tmp)),
            ("scheduler_rss", "scheduler RSS", lambda: measure_scheduler(b)),
        ]
        if only and "dispatch" in only:
            only = only | {"busy_minute"}  # dispatch sends what the busy minute queued
        for key, what, fn in steps:
            if (only and key not in only) or (profile.steps and key not in profile.steps):
                continue
            rows += guarded(key, what, backend, fn)
        if ab:
            rows += ab_pass(b, ab, tmp)
    finally:
        b.close()
    return rows


def table(rows: list[Row]) -> str:
    """Render rows as a Markdown table."""
    out = ["| what | backend | measured | floor (same run) | ratio | goal | result | note |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
        out.append(f"| {r.what} | {r.backend} | {r.value} | {r.floor} | {ratio} | {r.goal} | "
                   f"{r.status} | {r.note} |")  # fmt: skip
    return "\n".join(out)


def machine_line(m: dict[str, Any]) -> str:
    return (f"{m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; Python {m['python']}, "
            f"SQLite {m['sqlite']}, PostgreSQL {m['postgresql'] or 'not reachable'}; "
            f"{m['date']}; load average at start {m['load_average_at_start']}")  # fmt: skip


def write_docs_block(profile: str, text_: str) -> None:
    """Replace the generated block of docs/benchmarks.md for this profile."""
    begin, end = f"<!-- bench:{profile}:begin -->", f"<!-- bench:{profile}:end -->"
    if not DOCS.exists():
        return
    doc = DOCS.read_text()
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        DOCS.write_text(f"{head}{begin}\n{text_}\n{end}{tail}")


def _pg_data_directory() -> Path | None:
    if not pg_reachable():
        return None
    from bench.common import PG_ADMIN_URL

    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            path = Path(str(conn.exec_driver_sql("SHOW data_directory").scalar()))
        return path if path.exists() else None
    except Exception:  # noqa: BLE001 - not a superuser, or another host: check tmp only
        return None
    finally:
        engine.dispose()


def check_disk(tmp: Path) -> None:
    """Refuse the full profile unless tmp (SQLite) and PostgreSQL's data directory have room."""
    for where in (tmp, _pg_data_directory()):
        if where is None:
            continue
        free = shutil.disk_usage(where).free / 1e9
        if free < FULL_MIN_FREE_GB:
            raise SystemExit(
                f"bench-full needs at least {FULL_MIN_FREE_GB} GB free (PostgreSQL and SQLite "
                f"copies of 100,000 clients); {where} has {free:.1f} GB. Free some space and retry."
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--backend", choices=("all", "sqlite", "postgresql"), default="all")
    parser.add_argument("--clients", type=int, default=None, help="override the profile's size")
    parser.add_argument("--results", type=Path, default=None,
                        help="where to write the JSON (bench/results.json; results-scale.json "
                             "for the scale profile)")  # fmt: skip
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--try-fix", action="append", choices=sorted(FIXES), default=[],
                        help="apply a proposed database-level fix to the bench databases")  # fmt: skip
    parser.add_argument("--ab-fix", action="append", choices=sorted(FIXES), default=[],
                        help="after the rows, apply the fix and measure dispatch, feeds and the "
                             "webhook again on the same databases (same run)")  # fmt: skip
    parser.add_argument("--only", action="append", default=[],
                        choices=("detect_misses", "plan_ahead", "busy_minute", "dispatch", "http",
                                 "import", "scheduler_rss"),
                        help="measure only these steps (repeatable); for working on one row")  # fmt: skip
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the private databases and child servers are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    profile = PROFILES[args.profile]
    if args.clients:
        profile = Profile(**{**vars(profile), "clients": args.clients})
    if args.write_docs and (args.clients or args.backend != "all" or args.try_fix or args.only):
        parser.error("--write-docs records only a whole, unmodified profile run")
    if args.results is None:
        args.results = (
            RESULTS.with_name("results-scale.json") if profile.name == "scale" else RESULTS
        )
    started = time.monotonic()
    machine = machine_info()
    backends = list(profile.backends) if args.backend == "all" else [args.backend]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="steadfast-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if profile.name in ("full", "scale"):
            check_disk(tmp)
        for backend in backends:
            if backend == "postgresql" and not pg_reachable():
                rows.append(Row("all", "PostgreSQL benchmarks", backend, status="skipped",
                                note="nothing listens on 127.0.0.1:5432"))  # fmt: skip
                continue
            with ExitStack() as stack:
                rows += run_backend(
                    backend, profile, stack, tmp, args.try_fix, args.ab_fix, set(args.only)
                )
    elapsed = time.monotonic() - started
    md = table(rows)
    print(
        f"\nSteadfast benchmarks, {profile.name} profile, {elapsed:.0f} s\n{machine_line(machine)}\n"
    )
    print(md)
    args.results.write_text(json.dumps({"profile": profile.name, "profile_settings": vars(profile),
                                   "machine": machine, "elapsed_seconds": round(elapsed, 1),
                                   "rows": [r.as_dict() for r in rows]}, indent=2, default=str) + "\n")  # fmt: skip
    if args.write_docs:
        write_docs_block(profile.name, f"{machine_line(machine)}; {elapsed:.0f} s in all\n\n{md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
