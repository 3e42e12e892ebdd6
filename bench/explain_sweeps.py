"""EXPLAIN every sweep's due-row query on a generated PostgreSQL population; write docs/query-plans.md.

    .venv/bin/python -m bench.explain_sweeps [--clients 1000] [--out docs/query-plans.md]

The queries are the service's own statement builders (not copies), compiled for PostgreSQL
and explained against a throwaway database that bench/generate.py fills, plus alerts,
events and webhook deliveries added here, then ANALYZEd so the planner sees real counts.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

from bench.common import APP_OVERRIDES, pg_reachable, postgres_version, private_postgres
from bench.generate import generate
from service import create_app
from service.alert_texts import therapists_with_new_alerts_stmt, unacknowledged_crises_stmt
from service.checkins import prompts_to_phone_stmt
from service.db import db
from service.digests import closed_counts_stmt
from service.events import events_page_stmt, safe_txid
from service.horizon import due_sources_stmt
from service.misses import closing_stmt, unasked_stmt
from service.models import (
    Alert,
    CheckIn,
    Client,
    Commitment,
    Event,
    MeetingPlan,
    WebhookDelivery,
    WebhookEndpoint,
)
from service.prompting import due_prompts_stmt, due_reminders_stmt
from service.quotas import live_quotas_stmt
from service.retention import expired_bodies_stmt
from service.webhook_delivery import due_deliveries_stmt, live_endpoints_stmt

NOW = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)


def _extra_rows(now: datetime, rng: random.Random) -> dict[str, int]:
    """Add what the generator does not write: alerts, events, a webhook and its deliveries."""
    clients = db.session.execute(select(Client.id, Client.practice_id, Client.therapist_id)).all()
    alerts, events = [], []
    for n in range(6000):
        client_id, practice_id, therapist_id = rng.choice(clients)
        at = now - timedelta(minutes=rng.randint(1, 60 * 24 * 56))
        fresh = n < 40  # a handful new: unnotified, and a few unacknowledged crises
        alerts.append({
            "id": f"al_bench{n:020d}", "practice_id": practice_id, "client_id": client_id,
            "therapist_id": therapist_id, "kind": "crisis" if fresh and n % 10 == 0 else "missed",
            "status": "open" if fresh else "resolved", "source_type": "commitment",
            "source_id": f"cm_bench{n}", "occurrence": f"{at:%Y-%m-%dT%H:%M}",
            "dedup_key": f"bench:{n}", "detail": {}, "created_at": at,
            "notified_at": None if fresh else at,
        })  # fmt: skip
    for n in range(40000):
        client_id, practice_id, _ = rng.choice(clients)
        events.append({"type": "checkin.confirmed", "practice_id": practice_id, "client_id": client_id,
                       "payload": {}, "occurred_at": now - timedelta(minutes=n), "txid": 1000 + n})  # fmt: skip
    db.session.execute(insert(Alert), alerts)
    db.session.execute(insert(Event), events)
    practice_id = clients[0][1]
    db.session.execute(insert(WebhookEndpoint), [{
        "id": "wh_bench", "practice_id": practice_id, "url": "https://hooks.example.org/in",
        "secret_encrypted": "-", "active": True, "cursor": 0, "created_at": now,
    }])  # fmt: skip
    event_ids = db.session.scalars(select(Event.id).limit(8000)).all()
    db.session.execute(insert(WebhookDelivery), [{
        "id": f"wd_bench{i:020d}", "endpoint_id": "wh_bench", "event_id": event_id,
        "status": "pending" if i < 20 else "delivered", "attempts": 1,
        "next_attempt_at": now - timedelta(seconds=i), "created_at": now,
    } for i, event_id in enumerate(event_ids)])  # fmt: skip
    # Steady state: a sweep every 10 minutes re-plans a source once its watermark falls 4 h
    # behind the 36 h horizon, so at any one sweep only ~4 % of the sources lag.
    for table in ("meeting_plans", "commitments"):
        db.session.execute(
            text(f"UPDATE {table} SET planned_until = CAST(:t AS timestamptz)"
                 " - (abs(hashtext(id)) % 250) * interval '1 minute'"),
            {"t": now + timedelta(hours=36)},
        )  # fmt: skip
    db.session.commit()
    return {"alerts": len(alerts), "events": len(events), "webhook_deliveries": len(event_ids)}


def queries(now: datetime) -> list[tuple[str, str, Any]]:
    """Return (sweep, what, statement) for every due-row query of the sweeps, in tick order."""
    horizon = timedelta(hours=36)
    practice = db.session.scalar(select(Client.practice_id).limit(1))
    therapist = db.session.scalar(select(Client.therapist_id).limit(1))
    phone = db.session.scalar(select(Client.phone).limit(1))
    events_page = events_page_stmt(practice, (1000, 1000), 100, safe_below=safe_txid())
    return [
        ("plan_ahead", "meeting plans whose watermark lags", due_sources_stmt(MeetingPlan, now + horizon)),
        ("plan_ahead", "commitments whose watermark lags", due_sources_stmt(Commitment, now + horizon)),
        ("send_reminders_and_prompts", "reminders due", due_reminders_stmt(now)),
        ("send_reminders_and_prompts", "prompts due", due_prompts_stmt(now)),
        ("send_reminders_and_prompts", "open prompts of one number (codes)",
         prompts_to_phone_stmt(phone).where(CheckIn.status == "prompted")),
        ("detect_misses_and_skips", "prompted check-ins whose window closed", closing_stmt(now)),
        ("detect_misses_and_skips", "never-asked check-ins past their window", unasked_stmt(now)),
        ("evaluate_quotas", "live weekly quotas", live_quotas_stmt()),
        ("escalate_and_notify", "crises unacknowledged for 15 min", unacknowledged_crises_stmt(now, 15)),
        ("escalate_and_notify", "therapists with alerts not yet texted", therapists_with_new_alerts_stmt()),
        ("deliver_webhooks", "live endpoints", live_endpoints_stmt()),
        ("deliver_webhooks", "an endpoint's due deliveries", due_deliveries_stmt("wh_bench", now)),
        ("deliver_webhooks", "the practice's next safe events (fan-out)", events_page),
        ("send_digests", "one therapist's last day, counted", closed_counts_stmt(therapist, now)),
        ("purge_retention", "message bodies past retention", expired_bodies_stmt(now - timedelta(days=90))),
    ]  # fmt: skip


def explain(stmt: Any) -> tuple[str, str]:
    """Return the SQL of a statement and PostgreSQL's plan for it (parameters inlined)."""
    compiled = stmt.compile(dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True})
    sql, params = str(compiled), compiled.params
    with db.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN " + sql, params).scalars().all()
    return sql, "\n".join(plan)


def _indexes(plan: str) -> list[str]:
    return sorted(
        set(
            re.findall(
                r"(?:Index|Index Only|Bitmap Index) Scan (?:Backward )?(?:using|on) (\w+)", plan
            )
        )
    )


def write(
    out: Path, rows: list[tuple[str, str, str, str]], counts: dict[str, int], clients: int
) -> None:
    """Write the plans as a Markdown page."""
    lines = [
        "# Query plans of the sweeps' due-row queries (PostgreSQL)",
        "",
        f"Generated by `bench/explain_sweeps.py` on PostgreSQL {postgres_version() or '?'} with "
        f"{clients:,} generated clients (8 weeks of history), ANALYZEd; `now` = {NOW:%Y-%m-%dT%H:%MZ}.",
        "Row counts: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()) + ".",
        "",
        "| sweep | query | index used | top of plan |",
        "| --- | --- | --- | --- |",
    ]
    for sweep, what, _sql, plan in rows:
        top = plan.splitlines()[0].split("  (")[0].strip()
        lines.append(f"| {sweep} | {what} | {', '.join(_indexes(plan)) or '(seq scan)'} | {top} |")
    lines.append("")
    for sweep, what, sql, plan in rows:
        lines += [
            f"## {sweep}: {what}",
            "",
            "```sql",
            sql.strip(),
            "```",
            "",
            "```",
            plan,
            "```",
            "",
        ]
    out.write_text("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("docs/query-plans.md"))
    args = parser.parse_args(argv)
    if not pg_reachable():
        print("PostgreSQL is not reachable on 127.0.0.1:5432", file=sys.stderr)
        return 1
    with private_postgres("steadfast_explain") as url:
        generate(url, args.clients, now=NOW)
        app = create_app({**APP_OVERRIDES, "DATABASE_URL": url})
        with app.app_context():
            extra = _extra_rows(NOW, random.Random(7))
            with db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
                counts = {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                          for t in ("clients", "meeting_plans", "commitments", "checkins", "messages")}  # fmt: skip
            counts.update(extra)
            rows = [(sweep, what, *explain(stmt)) for sweep, what, stmt in queries(NOW)]
            db.session.remove()
            db.engine.dispose()
    write(args.out, rows, counts, args.clients)
    for sweep, what, _sql, plan in rows:
        print(f"{sweep:<28} {what:<45} {', '.join(_indexes(plan)) or '(seq scan)'}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
