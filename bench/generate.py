"""Build a realistic Steadfast population with bulk inserts (Core executemany, or COPY on PostgreSQL)."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Engine,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    select,
)

import service.models  # noqa: F401 - registers every table on the metadata
from service.db import UTCDateTime, db
from service.schedule import get_zone, resolve_local

ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/Anchorage",
    "Pacific/Honolulu",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
)
CLIENTS_PER_PRACTICE = 500
CLIENTS_PER_THERAPIST = 50
HISTORY_DAYS = 56  # 8 weeks
BATCH = 5_000
CHUNK_CLIENTS = 250  # clients whose rows are built (and held in memory) at once
# The outcome mix of closed history check-ins (cumulative thresholds).
OUTCOMES = (
    (0.70, "confirmed"),
    (0.80, "declined"),
    (0.92, "missed"),
    (0.97, "skipped"),
    (1.00, "excused"),
)
MEETING_TIMES = ("07:00", "12:00", "17:30", "18:30", "19:00", "19:30", "20:00")
COMMITMENT_TIMES = ("19:30", "20:00", "20:00", "20:30")
PATHS = ("aa", "na", "ca", "smart", "refuge", "recovery_dharma", "other")

# Column order of every table the generator writes (tuples are built in this order).
COLUMNS: dict[str, tuple[str, ...]] = {
    "practices": ("id", "name", "sms_from_number", "on_call_phone", "phone", "created_at"),
    "therapists": (
        "id", "practice_id", "email", "name", "role", "phone", "active", "created_at",
    ),
    "meetings": (
        "id", "practice_id", "slug", "name", "fellowship", "day", "time", "end_time",
        "timezone", "location", "address", "types", "attendance", "active", "created_at",
        "updated_at", "revision",
    ),
    "clients": (
        "id", "practice_id", "therapist_id", "display_name", "phone", "timezone", "language",
        "recovery_path", "sobriety_date", "quiet_start", "quiet_end", "discreet", "status",
        "created_at", "updated_at", "revision",
    ),
    "support_contacts": (
        "id", "practice_id", "client_id", "role", "display_name", "phone", "can_confirm",
        "created_at", "updated_at",
    ),
    "sms_consents": (
        "id", "practice_id", "subject_key", "client_id", "contact_id", "phone", "version",
        "granted", "method", "recorded_by", "recorded_at",
    ),
    "disclosure_consents": (
        "id", "practice_id", "client_id", "contact_id", "version", "scope", "purpose",
        "granted_on", "recorded_by", "recorded_at",
    ),
    "meeting_plans": (
        "id", "practice_id", "client_id", "meeting_id", "verifier_contact_id",
        "remind_minutes_before", "confirm_window_hours", "escalate_after_misses", "starts_on",
        "planned_until", "created_at", "updated_at", "revision",
    ),
    "commitments": (
        "id", "practice_id", "client_id", "kind", "title", "rrule", "time", "target",
        "verifier_contact_id", "grace_minutes", "escalate_after_misses", "notify_sponsor",
        "starts_on", "active", "planned_until", "quota_evaluated_week", "created_at",
        "updated_at", "revision",
    ),
    "checkins": (
        "id", "practice_id", "client_id", "source_type", "source_id", "occurrence", "event_at",
        "due_at", "reminder_at", "reminder_sent_at", "prompted_at", "closes_at", "status",
        "verifier_contact_id", "responded_at", "responded_by", "channel", "note", "skip_reason",
        "created_at", "updated_at",
    ),
    "messages": (
        "id", "practice_id", "client_id", "contact_id", "checkin_id", "direction", "to_number",
        "from_number", "body", "purpose", "template", "idempotency_key", "status",
        "provider_sid", "attempts", "segments", "send_after", "expires_at", "claimed_at",
        "sent_at", "delivered_at", "created_at", "updated_at",
    ),
}  # fmt: skip
JSON_COLUMNS = {"meetings": {"types"}, "disclosure_consents": {"scope"}}
TABLE_ORDER = tuple(COLUMNS)


class Ids:
    """Deterministic, time-ordered ids in the service's `prefix_<26 chars>` shape."""

    def __init__(self, seed: int, anchor: datetime) -> None:
        self._rng = random.Random(seed * 7919 + 1)
        self._ms = int(anchor.timestamp() * 1000) - 10_000_000_000

    def new(self, prefix: str) -> str:
        # One millisecond per id keeps ids unique and sorted by creation, as new_id does;
        # hex digits are a subset of the service's Crockford alphabet.
        self._ms += 1
        return f"{prefix}_{self._ms:012x}{self._rng.getrandbits(56):014x}"


@dataclass
class Report:
    """Rows written and seconds spent per table."""

    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    total_seconds: float = 0.0
    index_seconds: float = 0.0
    now: datetime | None = None

    def lines(self) -> list[str]:
        out = [f"{'table':<22}{'rows':>12}{'seconds':>10}{'rows/s':>12}"]
        for table in TABLE_ORDER:
            n, s = self.rows.get(table, 0), self.seconds.get(table, 0.0)
            rate = f"{n / s:,.0f}" if s > 0 else "-"
            out.append(f"{table:<22}{n:>12,}{s:>10.2f}{rate:>12}")
        out.append(f"{'(secondary indexes)':<22}{'':>12}{self.index_seconds:>10.2f}")
        total = sum(self.rows.values())
        out.append(f"{'total':<22}{total:>12,}{self.total_seconds:>10.2f}"
                   f"{total / max(self.total_seconds, 1e-9):>12,.0f}")  # fmt: skip
        return out


class Writer:
    """Buffers rows per table and writes them in batches: COPY on PostgreSQL, executemany else."""

    def __init__(self, engine: Engine, report: Report) -> None:
        self.engine = engine
        self.report = report
        self.postgres = engine.dialect.name == "postgresql"
        self.tables = db.metadata.tables
        self.buffers: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self._raw = engine.raw_connection()

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.buffers[table].append(row)

    def flush(self) -> None:
        """Write every buffered row, parents before children, and commit."""
        for table in TABLE_ORDER:
            rows = self.buffers.pop(table, None)
            if rows:
                self._write(table, rows)
        self._raw.commit()

    def _write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        cols = COLUMNS[table]
        started = time.perf_counter()
        if self.postgres:
            json_idx = [i for i, c in enumerate(cols) if c in JSON_COLUMNS.get(table, ())]
            cursor = self._raw.driver_connection.cursor()
            with cursor.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in rows:
                    if json_idx:
                        row = list(row)
                        for i in json_idx:
                            row[i] = json.dumps(row[i])
                    copy.write_row(row)
            cursor.close()
        else:
            # The Core insert() compiled once; values pre-adapted column by column exactly as
            # the column types would store them, because per-value bind processing in Python
            # cost 3x the insert itself.
            sql, adapters = self._sqlite_statement(table)
            cursor = self._raw.driver_connection.cursor()
            for start in range(0, len(rows), BATCH):
                chunk = rows[start : start + BATCH]
                cursor.executemany(
                    sql,
                    [
                        tuple(a(v) if a else v for a, v in zip(adapters, r, strict=True))
                        for r in chunk
                    ],
                )
            cursor.close()
        self.report.seconds[table] += time.perf_counter() - started
        self.report.rows[table] += len(rows)

    @lru_cache(maxsize=64)  # noqa: B019 - one Writer per run
    def _sqlite_statement(self, table: str) -> tuple[str, tuple[Callable[[Any], Any] | None, ...]]:
        cols = COLUMNS[table]
        t = self.tables[table]
        stmt = t.insert().values({c: bindparam(c) for c in cols})
        compiled = stmt.compile(dialect=self.engine.dialect)
        positions = compiled.positiontup or []
        if list(positions) != list(cols):
            raise RuntimeError(f"unexpected parameter order for {table}: {positions}")
        return str(compiled), tuple(_sqlite_adapter(t.c[c].type) for c in cols)

    def close(self) -> None:
        self._raw.close()


def _sqlite_datetime(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DateTime storage format; UTC instants are stored naive-in-UTC.
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _sqlite_adapter(column_type: Any) -> Callable[[Any], Any] | None:
    if isinstance(column_type, UTCDateTime | DateTime):
        return _sqlite_datetime
    if isinstance(column_type, Date):
        return lambda v: None if v is None else v.isoformat()
    if isinstance(column_type, JSON):
        return lambda v: None if v is None else json.dumps(v)
    if isinstance(column_type, Boolean):
        return lambda v: None if v is None else int(v)
    return None


def _hhmm_plus(value: str, minutes: int) -> str:
    h, m = map(int, value.split(":"))
    total = (h * 60 + m + minutes) % (24 * 60)
    return f"{total // 60:02d}:{total % 60:02d}"


class Calendar:
    """Occurrences in the history window, cached per (zone, weekday, local time)."""

    def __init__(self, now: datetime, history_days: int = HISTORY_DAYS) -> None:
        self.now = now
        self.history_days = history_days
        self.start = now - timedelta(days=history_days)

    @lru_cache(maxsize=4096)  # noqa: B019 - one Calendar per run
    def occurrences(
        self, zone: str, weekday: int | None, hhmm: str
    ) -> tuple[tuple[datetime, datetime], ...]:
        """Return (local occurrence, UTC instant) pairs with start <= instant < now."""
        tz = get_zone(zone)
        h, m = map(int, hhmm.split(":"))
        today = self.now.astimezone(tz).date()
        out = []
        for back in range(self.history_days + 2, -1, -1):
            day = today - timedelta(days=back)
            if weekday is not None and day.weekday() != weekday:
                continue
            local = datetime(day.year, day.month, day.day, h, m)
            instant = resolve_local(local, tz)
            if self.start <= instant < self.now:
                out.append((local, instant))
        return tuple(out)


def _phone(area: int, n: int) -> str:
    # NANP numbers whose exchange starts with 2-9, so phone libraries accept them.
    return f"+1{area}{2_000_000 + n:07d}"


def _last_evaluated_monday(now: datetime, zone: str) -> str:
    local = now.astimezone(get_zone(zone)).date()
    monday = local - timedelta(days=local.weekday())
    return (monday - timedelta(days=7)).isoformat()


def _outcome(rng: random.Random) -> str:
    x = rng.random()
    for threshold, status in OUTCOMES:
        if x < threshold:
            return status
    return "confirmed"


class Generator:
    """Emits every row of the population into a Writer, a chunk of clients at a time."""

    def __init__(
        self, writer: Writer, clients: int, seed: int, now: datetime,
        history_days: int = HISTORY_DAYS,
    ) -> None:  # fmt: skip
        self.w = writer
        self.n = clients
        self.rng = random.Random(seed)
        self.ids = Ids(seed, now)
        self.now = now
        self.cal = Calendar(now, history_days)
        self.sid = 0
        self.seed = seed
        self.practices: list[dict[str, Any]] = []

    def _provider_sid(self) -> str:
        self.sid += 1
        return f"SM{self.seed:08x}{self.sid:024x}"

    def run(self, progress: Callable[[int], None] | None = None) -> None:
        self._practices()
        self.w.flush()
        index = 0
        while index < self.n:
            upto = min(self.n, index + CHUNK_CLIENTS)
            for i in range(index, upto):
                self._client(i)
            self.w.flush()
            index = upto
            if progress:
                progress(index)

    def _practices(self) -> None:
        created = self.now - timedelta(days=400)
        count = max(1, -(-self.n // CLIENTS_PER_PRACTICE))
        for p in range(count):
            pid = self.ids.new("pr")
            in_practice = min(CLIENTS_PER_PRACTICE, self.n - p * CLIENTS_PER_PRACTICE)
            row = {"id": pid, "number": _phone(505, p), "therapists": [], "meetings": []}
            self.w.add("practices", (pid, f"Bench Practice {p:05d}", row["number"],
                                     _phone(506, p), _phone(507, p), created))  # fmt: skip
            for t in range(max(1, -(-in_practice // CLIENTS_PER_THERAPIST))):
                tid = self.ids.new("th")
                role = "admin" if t == 0 else "therapist"
                self.w.add("therapists", (tid, pid, f"therapist{p}.{t}@bench.example",
                                          f"Therapist {p}.{t}", role, _phone(404, p * 1000 + t),
                                          True, created))  # fmt: skip
                row["therapists"].append(tid)
            # About one meeting per 20 clients, spread over days, times and zones.
            for m in range(max(3, in_practice // 20)):
                mid = self.ids.new("mt")
                zone = ZONES[(p + m) % len(ZONES)]
                day = self.rng.randrange(7)
                start = self.rng.choice(MEETING_TIMES)
                online = self.rng.random() < 0.3
                self.w.add("meetings", (
                    mid, pid, f"bench-{p}-{m}", f"Bench Group {p}.{m}",
                    self.rng.choice(("aa", "na", "smart")), day, start, _hhmm_plus(start, 60),
                    zone, None if online else f"Hall {m}", None if online else f"{m} Main St",
                    ["O", "D"] if m % 2 else ["C"], "online" if online else "in_person", True,
                    created, created, 0,
                ))  # fmt: skip
                row["meetings"].append((mid, zone, day, start))
            self.practices.append(row)

    def _client(self, i: int) -> None:
        rng, now, ids, add = self.rng, self.now, self.ids, self.w.add
        practice = self.practices[i // CLIENTS_PER_PRACTICE]
        pid, from_number = practice["id"], practice["number"]
        local_index = i % CLIENTS_PER_PRACTICE
        tid = practice["therapists"][local_index // CLIENTS_PER_THERAPIST]
        zone = ZONES[i % len(ZONES)]
        created = now - timedelta(days=HISTORY_DAYS + 7 + rng.randrange(60))
        starts_on = (now - timedelta(days=HISTORY_DAYS + 7)).date()
        cid = ids.new("cl")
        phone = _phone(202, i)
        add("clients", (cid, pid, tid, f"Client {i:06d}", phone, zone,
                        "es" if i % 10 == 0 else "en", rng.choice(PATHS),
                        date(2026, 1, 1) - timedelta(days=rng.randrange(900)), "21:00", "08:00",
                        True, "active", created, created, 0))  # fmt: skip
        add("sms_consents", (ids.new("sc"), pid, f"client:{cid}", cid, None, phone, 1, True,
                             "written", "bench", created))  # fmt: skip
        contacts = []
        for k, (role, can_confirm, scope) in enumerate((
            ("sponsor", True, ["checkins", "missed", "urge"]),
            ("peer", True, ["checkins"]),
            ("family", False, ["urge"]),
        )):  # fmt: skip
            ctid = ids.new("ct")
            cphone = _phone(303, i * 3 + k)
            add("support_contacts", (ctid, pid, cid, role, f"{role.title()} of {i}", cphone,
                                     can_confirm, created, created))  # fmt: skip
            add("sms_consents", (ids.new("sc"), pid, f"contact:{ctid}", None, ctid, cphone, 1,
                                 True, "verbal", "bench", created))  # fmt: skip
            add("disclosure_consents", (ids.new("dc"), pid, cid, ctid, 1, scope, "accountability",
                                        created.date(), "bench", created))  # fmt: skip
            contacts.append((ctid, cphone))
        sponsor = contacts[0]
        who = {None: (cid, phone), sponsor[0]: sponsor}

        for k, (mid, mzone, day, start) in enumerate(rng.sample(practice["meetings"], 3)):
            mpid = ids.new("mp")
            verifier = sponsor[0] if k == 0 else None
            add("meeting_plans", (mpid, pid, cid, mid, verifier, 60, 12, 1, starts_on, now,
                                  created, created, 0))  # fmt: skip
            weekday = (day - 1) % 7  # TSML day 0 = Sunday; Python's Monday = 0
            for local, at in self.cal.occurrences(mzone, weekday, start):
                self._checkin(pid, cid, "meeting_plan", mpid, local, at, at + timedelta(hours=1),
                              timedelta(hours=12), at - timedelta(minutes=60), verifier, who,
                              from_number)  # fmt: skip
        for kind, title, notify in (
            ("sponsor_call", "Call your sponsor", True),
            ("practice", "Evening reflection", False),
        ):
            cmid = ids.new("cm")
            hhmm = rng.choice(COMMITMENT_TIMES)
            add("commitments", (cmid, pid, cid, kind, title, "FREQ=DAILY", hhmm, None, None, 120,
                                1, notify, starts_on, True, now, None, created, created, 0))  # fmt: skip
            for local, at in self.cal.occurrences(zone, None, hhmm):
                self._checkin(pid, cid, "commitment", cmid, local, at, at, timedelta(minutes=120),
                              None, None, who, from_number)  # fmt: skip
        add("commitments", (ids.new("cm"), pid, cid, "meeting_quota", "Three meetings a week",
                            "FREQ=WEEKLY", None, 3, None, 120, 1, False, starts_on, True, None,
                            _last_evaluated_monday(now, zone), created, created, 0))  # fmt: skip

    def _checkin(
        self,
        pid: str,
        cid: str,
        source_type: str,
        source_id: str,
        local: datetime,
        event_at: datetime,
        due_at: datetime,
        window: timedelta,
        reminder_at: datetime | None,
        verifier: str | None,
        who: dict[str | None, tuple[str, str]],
        from_number: str,
    ) -> None:
        rng, now, add = self.rng, self.now, self.w.add
        ci = self.ids.new("ci")
        closes_at = due_at + window
        recipient_id, recipient_phone = who[verifier]
        contact_id = verifier
        if closes_at <= now:
            status = _outcome(rng)
        elif due_at <= now:
            status = "prompted"  # in flight: asked, not yet answered
        else:
            status = "scheduled"
        prompted = status in ("confirmed", "declined", "missed", "excused", "prompted")
        responded_at = None
        if status in ("confirmed", "declined"):
            responded_at = due_at + timedelta(
                minutes=rng.randrange(1, int(window.total_seconds() // 60))
            )
        reminder_sent = reminder_at if reminder_at is not None and reminder_at <= now else None
        updated = responded_at or (closes_at if closes_at <= now else due_at)
        add("checkins", (
            ci, pid, cid, source_type, source_id, local, event_at, due_at, reminder_at,
            reminder_sent, due_at if prompted else None, closes_at, status, verifier,
            responded_at, recipient_id if responded_at else None, "sms" if responded_at else None,
            "excused by therapist" if status == "excused" else None,
            "stale" if status == "skipped" else None, event_at - timedelta(hours=36), updated,
        ))  # fmt: skip
        if reminder_sent is not None:
            self._message(pid, cid, None, ci, "outbound", who[None][1], from_number,
                          "Steadfast: your meeting is at the usual time today.", "reminder",
                          "reminder_meeting", f"reminder:{ci}", reminder_sent,
                          reminder_sent + timedelta(minutes=30))  # fmt: skip
        if prompted:
            self._message(pid, cid, contact_id, ci, "outbound", recipient_phone, from_number,
                          "Steadfast: did it happen? Reply YES or NO.", "prompt",
                          "prompt_contact" if contact_id else "prompt_commitment_self",
                          f"prompt:{ci}:{recipient_id}", due_at, closes_at)  # fmt: skip
        if responded_at is not None:
            self._message(pid, cid, contact_id, ci, "inbound", from_number, recipient_phone,
                          "YES" if status == "confirmed" else "NO", "inbound", None, None,
                          responded_at, None)  # fmt: skip

    def _message(
        self,
        pid: str,
        cid: str,
        contact_id: str | None,
        checkin_id: str,
        direction: str,
        to_number: str,
        from_number: str,
        body: str,
        purpose: str,
        template: str | None,
        key: str | None,
        at: datetime,
        expires_at: datetime | None,
    ) -> None:
        if direction == "outbound":
            sent, delivered = at + timedelta(seconds=4), at + timedelta(seconds=9)
            row = (self.ids.new("ms"), pid, cid, contact_id, checkin_id, direction, to_number,
                   from_number, body, purpose, template, key, "delivered", self._provider_sid(), 1,
                   1, at, expires_at, at, sent, delivered, at, delivered)  # fmt: skip
        else:
            row = (self.ids.new("ms"), pid, cid, contact_id, checkin_id, direction, to_number,
                   from_number, body, purpose, None, None, "received", self._provider_sid(), 0, 1,
                   None, None, None, None, None, at, at)  # fmt: skip
        self.w.add("messages", row)


def bench_now() -> datetime:
    """The generator's default clock: this minute, so a live scheduler sees realistic rows."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def _sqlite_fast(engine: Engine) -> None:
    # Bulk loading only: a crash mid-load loses a throwaway benchmark database.
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=OFF")
        # Indexes on random keys (idempotency keys, phone numbers) thrash the default 2 MB cache.
        cursor.execute("PRAGMA cache_size=-262144")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for bulk work on `url` (SQLite gets WAL and no fsync)."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        _sqlite_fast(engine)
    return engine


def generate(
    url: str,
    clients: int,
    *,
    seed: int = 1,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    history_days: int = HISTORY_DAYS,
) -> Report:
    """Create the schema on an empty database at `url` and fill it; return rows and timings.

    `history_days` shortens the check-in history (as retention would) for scale runs where
    the population, not its past, is what is measured.
    """
    now = now or bench_now()
    engine = make_engine(url)
    try:
        if inspect(engine).has_table("clients"):
            with engine.connect() as conn:
                if conn.scalar(select(func.count()).select_from(db.metadata.tables["clients"])):
                    raise SystemExit(f"refusing to generate into a non-empty database: {url}")
        db.metadata.create_all(engine)
        report = Report(now=now)
        started = time.perf_counter()
        # Secondary indexes are built once after the load (a sort) instead of row by row.
        deferred = [i for t in TABLE_ORDER for i in db.metadata.tables[t].indexes]
        with engine.begin() as conn:
            for index in deferred:
                index.drop(conn)
        writer = Writer(engine, report)
        try:
            Generator(writer, clients, seed, now, history_days).run(progress)
        finally:
            writer.close()
        index_started = time.perf_counter()
        with engine.begin() as conn:
            for index in deferred:
                index.create(conn)
        report.index_seconds = time.perf_counter() - index_started
        report.total_seconds = time.perf_counter() - started
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        else:
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
                # Back to the default journal the service itself runs with.
                conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
        return report
    finally:
        engine.dispose()


def count_rows(url: str, tables: Iterable[str] = TABLE_ORDER) -> dict[str, int]:
    """Return the row count of each table."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t: conn.scalar(select(func.count()).select_from(db.metadata.tables[t]))
                for t in tables
            }
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of an empty database")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--now", default=None, help="the clock, ISO-8601 with offset")
    parser.add_argument("--history-days", type=int, default=HISTORY_DAYS,
                        help="days of check-in history per client (default 8 weeks)")  # fmt: skip
    args = parser.parse_args(argv)
    now = datetime.fromisoformat(args.now).astimezone(UTC) if args.now else None

    def progress(done: int) -> None:
        print(f"\r{done:,}/{args.clients:,} clients", end="", file=sys.stderr, flush=True)

    report = generate(args.db, args.clients, seed=args.seed, now=now, progress=progress,
                      history_days=args.history_days)  # fmt: skip
    print(file=sys.stderr)
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
