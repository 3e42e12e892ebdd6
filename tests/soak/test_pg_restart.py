"""PostgreSQL restarted under a running practice: the web fails fast with 503, sweeps back off and
resume, and the run ends as if nothing had happened (issue #9, database faults).

A private cluster (initdb in a temporary folder, its own port on 127.0.0.1; never the shared
server) serves gunicorn and `flask jobs run`, texting through the fake Twilio. Prompts are due
before, during and after an outage made with `pg_ctl stop -m immediate`.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select

from service import create_app
from service.db import db
from service.models import CheckIn, Commitment, Message
from tests.conftest import BASE_OVERRIDES
from tests.factories import make_client, make_commitment, make_contact, make_people
from tests.fake_twilio import FakeTwilio, fake_twilio_fixture
from tests.soak._cluster import Cluster, free_port, private_cluster
from tests.soak._services import (
    afternoon_zone,
    gunicorn_cmd,
    migrate,
    process,
    scheduler_cmd,
    wait_ready,
)
from tests.soak.conftest import (
    FLASK,
    ROOT,
    assert_nothing_lost_or_doubled,
    read_event_stream,
    scheduler_env,
)

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 8
PER_GROUP = 4  # clients whose prompt is due before, during and after the outage
SLOW_503 = 2.0  # seconds: an answer during the outage must come faster than this


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    yield from private_cluster()


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    # Wall-clock Twilio: the scheduler here runs in real time, not at simulated instants.
    yield from fake_twilio_fixture()


def _seed(zone: str, due: dict[str, datetime]) -> dict:
    """alice's clients, each with a daily call whose prompt is due at one of `due`'s instants."""
    people = make_people()
    created = datetime.now(UTC) - timedelta(minutes=5)
    sources: dict[str, list[str]] = {}
    n = 0
    for group, at in due.items():
        local = at.astimezone(ZoneInfo(zone))
        for _ in range(PER_GROUP):
            n += 1
            client = make_client(people.alice.therapist, display_name=f"Client {n}",
                                 phone=f"+150055506{n:02d}", timezone=zone)  # fmt: skip
            contact = make_contact(client, display_name=f"Sponsor {n}",
                                   phone=f"+150055507{n:02d}")  # fmt: skip
            # Created now (the factories date rows in December 2026, when planning would start).
            commitment = make_commitment(client, starts_on=local.date(), time=f"{local:%H:%M}",
                                         verifier_contact_id=contact.id, created_at=created,
                                         updated_at=created)  # fmt: skip
            sources.setdefault(group, []).append(commitment.id)
    db.session.commit()
    return {"people": people, "sources": sources}


def _prompts_sent(source_ids: list[str]) -> int:
    db.session.remove()
    stmt = (
        select(Message.id)
        .join(CheckIn, CheckIn.id == Message.checkin_id)
        .where(
            CheckIn.source_id.in_(source_ids),
            Message.purpose == "prompt",
            Message.provider_sid.is_not(None),
        )  # fmt: skip
    )
    return len(db.session.scalars(stmt).all())


def _state(source_ids: list[str]) -> list:
    """What happened to these sources' check-ins and texts (for a failure message)."""
    db.session.remove()
    rows = db.session.scalars(select(CheckIn).where(CheckIn.source_id.in_(source_ids))).all()
    texts = db.session.scalars(select(Message)).all()
    return [(r.due_at.isoformat(), r.status, r.skip_reason) for r in rows] + [
        (m.purpose, m.status, m.to_number, m.error_message) for m in texts
    ]


def _probe(session: requests.Session, url: str, headers: dict[str, str]) -> dict:
    started = time.monotonic()
    try:
        r = session.get(url, headers=headers, timeout=10)
        status, mime, retry = (
            r.status_code,
            r.headers.get("Content-Type", ""),
            r.headers.get("Retry-After"),
        )
    except requests.RequestException as exc:
        status, mime, retry = f"error {type(exc).__name__}", "", None
    return {"url": url.rsplit("/", 1)[-1], "status": status, "type": mime, "retry": retry,
            "seconds": time.monotonic() - started}  # fmt: skip


def test_postgresql_restart_mid_run_loses_nothing_and_sends_nothing_twice(
    cluster: Cluster, twilio: FakeTwilio, tmp_path
):
    cluster.psql("CREATE DATABASE steadfast")
    url = cluster.database_url("steadfast")
    env = scheduler_env(url, twilio, SCHEDULER_INTERVAL_SCALE="0.1", LOG_LEVEL="INFO")
    migrate(env)

    now = datetime.now(UTC)
    zone = afternoon_zone(now)
    # Planning starts at the scheduler's "now", so every prompt is due after it started:
    # the first group on the first minute at least 45 s away (start-up, first sweeps), the
    # second on the next minute, while the database is down (the outage starts 2 s before),
    # the third a minute later, after it is back.
    first = (now + timedelta(seconds=105)).replace(second=0, microsecond=0)
    boundary = first + timedelta(minutes=1)
    due = {"before": first, "during": boundary, "after": boundary + timedelta(minutes=1)}

    app = create_app({**BASE_OVERRIDES, "DATABASE_URL": url})
    with app.app_context():
        seeded = _seed(zone, due)
        alice = seeded["people"].alice
        db.session.remove()
        db.engine.dispose()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = f"{base}/api/v1/clients"
    figures: dict = {"zone": zone}
    with (
        process(gunicorn_cmd(port), env, tmp_path / "web.log") as web,
        process(scheduler_cmd(), env, tmp_path / "scheduler.log") as jobs,
        app.app_context(),
    ):
        wait_ready(base, web)
        deadline = time.monotonic() + (first - datetime.now(UTC)).total_seconds() + 20
        while _prompts_sent(seeded["sources"]["before"]) < PER_GROUP:
            assert time.monotonic() < deadline, _state(seeded["sources"]["before"])
            assert jobs.poll() is None, (tmp_path / "scheduler.log").read_text()[-3000:]
            time.sleep(0.5)
        db.session.remove()
        db.engine.dispose()
        session = requests.Session()
        assert session.get(api, headers=alice.headers, timeout=10).status_code == 200

        # ---- the outage ------------------------------------------------------------------
        wait = (boundary - timedelta(seconds=2) - datetime.now(UTC)).total_seconds()
        assert wait > 0, "seeding and start-up took too long for the planned outage"
        time.sleep(wait)
        stopped_at = time.monotonic()
        cluster.stop("immediate")
        probes = []
        while time.monotonic() - stopped_at < OUTAGE_SECONDS:
            probes.append(_probe(session, api, alice.headers))
            probes.append(_probe(session, f"{base}/readyz", {}))
            time.sleep(0.2)
        restart_took = cluster.start()
        outage = time.monotonic() - stopped_at
        ready_after = wait_ready(base, web)
        figures |= {"outage_s": round(outage, 1), "pg_start_s": round(restart_took, 1),
                    "ready_again_after_start_s": round(ready_after, 1)}  # fmt: skip

        bad = [p for p in probes if p["status"] != 503 or p["seconds"] >= SLOW_503]
        assert not bad, bad
        assert all(p["retry"] for p in probes)
        assert all(p["type"].startswith("application/problem+json") for p in probes
                   if p["url"] == "clients")  # fmt: skip
        latencies = sorted(p["seconds"] * 1000 for p in probes)
        figures |= {"requests_during_outage": len(probes),
                    "ms_503_p50": round(latencies[len(latencies) // 2], 1),
                    "ms_503_max": round(latencies[-1], 1)}  # fmt: skip
        assert session.get(api, headers=alice.headers, timeout=10).status_code == 200

        # ---- sweeps resume ---------------------------------------------------------------
        everyone = [s for group in seeded["sources"].values() for s in group]
        deadline = time.monotonic() + (due["after"] - datetime.now(UTC)).total_seconds() + 60
        during_sent_after = None
        while _prompts_sent(everyone) < len(everyone):
            if during_sent_after is None and (
                _prompts_sent(seeded["sources"]["during"]) == PER_GROUP
            ):
                during_sent_after = round(time.monotonic() - stopped_at - outage, 1)
            assert time.monotonic() < deadline, (
                {g: _prompts_sent(s) for g, s in seeded["sources"].items()},
                (tmp_path / "scheduler.log").read_text()[-3000:],
            )
            assert jobs.poll() is None, "the scheduler died"
            time.sleep(0.5)
        time.sleep(3)  # a few more sweeps: nothing more may be sent
        assert jobs.poll() is None, "the scheduler died"
        web_alive = web.poll() is None
    scheduler_log = (tmp_path / "scheduler.log").read_text()
    assert web_alive
    assert "sweeps back off" in scheduler_log, scheduler_log[-3000:]
    assert "sweeps resume" in scheduler_log, scheduler_log[-3000:]
    assert "Traceback" not in scheduler_log, scheduler_log[-3000:]
    figures["backoff_lines"] = scheduler_log.count("sweeps back off")
    figures["outage_prompts_sent_s_after_restart"] = during_sent_after
    backoff_lines = [line for line in scheduler_log.splitlines() if "WARNING" in line]

    with app.app_context():
        db.session.remove()
        # Every due prompt was sent exactly once, each one POSTed to Twilio exactly once.
        for group, sources in seeded["sources"].items():
            rows = db.session.scalars(
                select(CheckIn).where(
                    CheckIn.source_id.in_(sources), CheckIn.due_at <= due["after"]
                )  # fmt: skip
            ).all()
            assert len(rows) == PER_GROUP and all(r.prompted_at for r in rows), group
        sent = db.session.scalars(select(Message).where(Message.provider_sid.is_not(None))).all()
        figures |= {"texts_sent": len(sent), "twilio_posts": len(twilio.posts())}
        assert len(twilio.posts()) == len(sent) == len(everyone)

        # Then let the run end: a tick 20 h on closes every check-in (no replies came).
        final = datetime.now(UTC) + timedelta(hours=20)
        done = subprocess.run([*FLASK, "jobs", "tick", "--now", final.isoformat()], cwd=ROOT,
                              env=env, capture_output=True, timeout=180, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout.decode(errors="replace")[-3000:]
        db.session.remove()
        figures |= assert_nothing_lost_or_doubled(twilio, final)
        ids = read_event_stream(app.test_client(), alice.headers)
        assert len(ids) == len(set(ids)) == figures["events"], (len(ids), figures["events"])
        assert db.session.scalars(select(Commitment)).all()
        db.session.remove()
        db.engine.dispose()
    (tmp_path / "figures.json").write_text(json.dumps(figures, indent=2))
    print("\n" + "\n".join(backoff_lines[:12]))
    print(f"pg restart soak: {json.dumps(figures)}")
