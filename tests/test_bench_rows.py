"""bench/run.py's setups and floors: the insert floor on SQLite (the step's rows inserted into a
copy of the database taken before the step, the delete-and-reinsert floor measured beside it),
and the check-ins the detect-misses row re-arms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import create_engine, func, select

from bench.generate import generate
from bench.run import _insert_floor, _snapshot, _t
from service import create_app

NOW = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


def _count(engine, where) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(_t("messages")).where(where))


def test_the_floor_inserts_the_steps_rows_into_the_database_the_step_found(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'floor.db'}"
    generate(url, 5, seed=1, now=NOW)
    create_app({"DATABASE_URL": url, "TESTING": True})  # the models' metadata, as the bench has
    engine = create_engine(url)
    messages = _t("messages")
    marker = NOW + timedelta(minutes=1)
    mine = messages.c.created_at == marker
    try:
        snapshot = _snapshot(SimpleNamespace(engine=engine))
        assert snapshot is not None and snapshot.exists()
        # the step: ten rows written after the copy was taken
        with engine.begin() as conn:
            rows = [dict(r) for r in conn.execute(select(messages).limit(10)).mappings()]
            for n, row in enumerate(rows):
                row.update(
                    id=f"msg_floor{n:04d}",
                    created_at=marker,
                    provider_sid=None,
                    idempotency_key=f"floor-{n}",
                )
            conn.execute(messages.insert(), rows)
        copy = create_engine(f"sqlite:///{snapshot}")
        assert _count(copy, mine) == 0  # the copy is the state before the step
        copy.dispose()

        seconds, n, reinsert = _insert_floor(engine, "messages", mine, snapshot)

        assert n == 10 and seconds > 0 and reinsert is not None and reinsert > 0
        assert not snapshot.exists() and not Path(f"{snapshot}-wal").exists()
        assert _count(engine, mine) == 10  # the bench database keeps the step's rows
    finally:
        engine.dispose()


def test_the_detect_misses_rows_are_ones_the_sweep_closes(tmp_path: Path) -> None:
    """DueRows re-arms answered check-ins older than any window, so the sweep closes every one
    of them (a recent one's prompt would get its window extended instead)."""
    from bench.run import DueRows
    from service.db import db
    from service.jobs import sweeps

    url = f"sqlite:///{tmp_path / 'due.db'}"
    generate(url, 5, seed=2, now=NOW)
    app = create_app({"DATABASE_URL": url, "TESTING": True})
    engine = create_engine(url)
    checkins = _t("checkins")
    try:
        due = DueRows(engine, 40, NOW)
        assert len(due.ids) == 40
        with engine.connect() as conn:
            ages = conn.execute(
                select(checkins.c.event_at).where(checkins.c.id.in_(due.ids))
            ).scalars()
            assert all(NOW - at >= DueRows.AGE for at in ages)
        due.arm()
        with app.app_context():
            assert sweeps.detect_misses_and_skips(NOW) == 40
            db.session.remove()
        due.restore()
    finally:
        engine.dispose()
