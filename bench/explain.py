"""EXPLAIN ANALYZE every sweep's due-row query on PostgreSQL at ~1M check-ins; fail on a Seq Scan.

    .venv/bin/python -m bench.explain [--clients 7400] [--write-docs]

The sweeps' statements come from the service's own builders (via bench/explain_sweeps.py,
which the engine engineer keeps); the per-row lookups the sweeps make after a claim, which
have no builder yet, are rebuilt here from the service code. Each plan is checked for a
sequential scan on checkins or messages, the two tables that grow without bound.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bench.common import APP_OVERRIDES, pg_reachable, postgres_version, private_postgres
from bench.generate import generate

GROWING = ("checkins", "messages")
# ~136 check-ins per client (8 weeks): 7,400 clients is about a million.
DEFAULT_CLIENTS = 7_400


def per_row_queries(now: Any) -> list[tuple[str, str, Any]]:
    """The lookups a claimed batch costs, from the service's builders where it has them."""
    from service.checkins import prompts_to_phone_stmt
    from service.db import db
    from service.misses import history_stmt, prompts_stmt
    from service.models import CheckIn, Client, Message
    from service.notifications import gate
    from service.notifications.inbound import _WHO_HAS_AND_CHECKINS as who_has_and_checkins

    texts = list(
        db.session.scalars(
            select(Message.id)
            .where(Message.direction == "outbound", Message.purpose == "prompt")
            .order_by(Message.created_at.desc())
            .limit(32)
        )
    )
    # A closing batch: 100 check-ins of distinct sources (the escalation's chunk).
    batch = list(
        db.session.scalars(
            select(CheckIn)
            .where(CheckIn.status == "missed")
            .distinct(CheckIn.source_id)
            .order_by(CheckIn.source_id, CheckIn.event_at.desc())
            .limit(100)
        )
    )
    return [
        ("dispatch", "due queued texts in order (the claim's candidate scan)",
         select(Message.id).where(Message.status == "queued", Message.direction == "outbound",
                                  Message.send_after <= now)
         .order_by(Message.send_after, Message.id).limit(80).with_for_update(skip_locked=True)),
        ("dispatch", "a claimed batch's gate facts (gate.facts_statement, 32 texts)",
         gate.facts_statement(texts).params(**gate.send_window(now))),
        ("detect_misses_and_skips", "a closing batch's prompts (prompts_stmt, 100 check-ins)",
         prompts_stmt([row.id for row in batch])),
        ("detect_misses_and_skips", "runs of misses for escalation (history_stmt, 100 sources)",
         history_stmt(batch)),
        ("inbound webhook", "late-reply candidates of a number (late_reply_candidates)",
         prompts_to_phone_stmt("+12022000001").where(
             CheckIn.status == "missed", CheckIn.prompted_at.is_not(None),
             CheckIn.closes_at >= now - timedelta(hours=24))
         .order_by(CheckIn.closes_at.desc(), CheckIn.id)),
        ("inbound webhook", "who has the number and what a reply may answer (one statement)",
         who_has_and_checkins.statement("postgresql").params(
             phone=db.session.scalar(select(Client.phone).limit(1)),
             since=now - timedelta(hours=24))),
        ("inbound webhook", "texts from one number today (daily cap / dedupe)",
         select(Message.id).where(Message.to_number == "+12022000001",
                                  Message.created_at >= now - timedelta(days=1))),
    ]  # fmt: skip


def explain_analyze(stmt: Any) -> tuple[str, str]:
    """Return (sql, plan) of EXPLAIN (ANALYZE, BUFFERS) run in a transaction rolled back."""
    from service.db import db

    compiled = stmt.compile(dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True})
    sql = str(compiled)
    with db.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, compiled.params)
        text_ = "\n".join(plan.scalars().all())
        conn.rollback()  # FOR UPDATE claims take no lasting locks
    return sql, text_


def seq_scans(plan: str) -> list[str]:
    """Return the growing tables the plan reads with a sequential scan."""
    return sorted({t for t in re.findall(r"Seq Scan on (\w+)", plan) if t in GROWING})


def _exec_ms(plan: str) -> float:
    match = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return float(match.group(1)) if match else float("nan")


def _indexes(plan: str) -> str:
    found = re.findall(
        r"(?:Index|Index Only|Bitmap Index) Scan (?:Backward )?(?:using|on) (\w+)", plan
    )
    return ", ".join(sorted(set(found))) or "(none)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS)
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)
    if not pg_reachable():
        print("PostgreSQL is not reachable on 127.0.0.1:5432", file=sys.stderr)
        return 2
    from bench import explain_sweeps
    from service import create_app
    from service.db import db

    now = explain_sweeps.NOW
    results = []
    with private_postgres("steadfast_explain") as url:
        started = time.monotonic()
        generate(url, args.clients, now=now)
        app = create_app({**APP_OVERRIDES, "DATABASE_URL": url})
        with app.app_context():
            explain_sweeps._extra_rows(now, random.Random(7))
            with db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
                counts = {
                    t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() for t in GROWING
                }
            built = time.monotonic() - started
            for sweep, what, stmt in [*explain_sweeps.queries(now), *per_row_queries(now)]:
                sql, plan = explain_analyze(stmt)
                results.append((sweep, what, sql, plan))
            db.session.remove()
            db.engine.dispose()

    bad = [(s, w, seq_scans(p)) for s, w, _, p in results if seq_scans(p)]
    lines = [
        f"PostgreSQL {postgres_version() or '?'}, {args.clients:,} clients: "
        f"{counts['checkins']:,} check-ins, {counts['messages']:,} messages "
        f"(built and ANALYZEd in {built:.0f} s). Full plans: `python -m bench.explain`; "
        "the engine's own page: [query-plans.md](query-plans.md).",
        "",
        "| sweep | query | indexes used | seq scan on checkins/messages | execution |",
        "| --- | --- | --- | --- | --- |",
    ]
    for sweep, what, _sql, plan in results:
        scans = ", ".join(seq_scans(plan)) or "none"
        lines.append(f"| {sweep} | {what} | {_indexes(plan)} | {scans} | {_exec_ms(plan):.2f} ms |")
    block = "\n".join(lines)
    for sweep, what, sql, plan in results:
        print(f"== {sweep}: {what}\n{sql.strip()}\n{plan}\n")
    print(block)
    if args.write_docs:
        from bench.run import write_docs_block

        write_docs_block("plans", block)
    if bad:
        for sweep, what, tables in bad:
            print(f"SEQ SCAN on {', '.join(tables)}: {sweep}: {what}", file=sys.stderr)
        return 1
    print("no sequential scan on checkins or messages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
