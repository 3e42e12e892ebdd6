"""Smoke test of bench/generate.py: 20 clients on SQLite, row counts per table as specified."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.generate import count_rows, generate

CLIENTS = 20
NOW = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


def _per(engine, sql: str) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text(sql))]


def test_generator_writes_the_specified_population(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bench-smoke.db'}"
    report = generate(url, CLIENTS, seed=3, now=NOW)
    counts = count_rows(url)
    assert counts == dict(report.rows)
    assert counts["practices"] == 1
    assert counts["clients"] == CLIENTS
    assert counts["support_contacts"] == 3 * CLIENTS
    assert counts["sms_consents"] == 4 * CLIENTS  # the client and each contact
    assert counts["disclosure_consents"] == 3 * CLIENTS
    assert counts["meeting_plans"] == 3 * CLIENTS
    assert counts["commitments"] == 3 * CLIENTS

    engine = create_engine(url)
    try:
        assert set(_per(engine, "SELECT count(*) FROM support_contacts GROUP BY client_id")) == {3}
        assert set(_per(engine, "SELECT count(*) FROM meeting_plans GROUP BY client_id")) == {3}
        assert set(_per(engine, "SELECT count(*) FROM commitments WHERE kind <> 'meeting_quota' "
                                "AND rrule = 'FREQ=DAILY' GROUP BY client_id")) == {2}  # fmt: skip
        assert set(_per(engine, "SELECT count(*) FROM commitments WHERE kind = 'meeting_quota' "
                                "GROUP BY client_id")) == {1}  # fmt: skip
        # Eight weeks of history: 8 meetings per plan, 56 days per daily commitment (a DST
        # change inside the window can move one occurrence across the edge).
        per_plan = _per(engine, "SELECT count(*) FROM checkins WHERE source_type = 'meeting_plan' "
                                "GROUP BY source_id")  # fmt: skip
        per_daily = _per(engine, "SELECT count(*) FROM checkins WHERE source_type = 'commitment' "
                                 "GROUP BY source_id")  # fmt: skip
        assert len(per_plan) == 3 * CLIENTS and set(per_plan) <= {7, 8, 9}
        assert len(per_daily) == 2 * CLIENTS and set(per_daily) <= {55, 56, 57}
        # Every check-in that was asked has its prompt; every answer has its reply.
        unprompted = _per(engine, "SELECT count(*) FROM checkins c WHERE c.prompted_at IS NOT NULL "
                                  "AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.checkin_id = c.id "
                                  "AND m.purpose = 'prompt')")  # fmt: skip
        assert unprompted == [0]
        statuses = dict(
            (s, n) for s, n in
            _rows(engine, "SELECT status, count(*) FROM checkins GROUP BY status")
        )  # fmt: skip
        closed = sum(
            statuses.get(s, 0) for s in ("confirmed", "declined", "missed", "skipped", "excused")
        )
        assert 0.6 < statuses["confirmed"] / closed < 0.8
        replies = _per(engine, "SELECT count(*) FROM messages WHERE direction = 'inbound'")
        assert replies == [statuses["confirmed"] + statuses.get("declined", 0)]
        zones = _per(engine, "SELECT count(DISTINCT timezone) FROM clients")
        assert zones == [12]
    finally:
        engine.dispose()


def _rows(engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]
