"""The planned events' payload text, put together per value, is what json.dumps makes of it.

`planning._planned_payloads` against json.dumps of `_planned_event`'s payload dict, and
`append_serialized_event_rows` against `append_event_rows` (the same stored rows).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from service import planning
from service.db import db
from service.events import append_event_rows, append_serialized_event_rows
from service.models import Event

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


def _row(source_id: str, occurrence: datetime, due_at: object, source_type: str = "commitment"):
    return {
        "id": "ci_x",
        "practice_id": "pr_x",
        "client_id": "cl_x",
        "source_type": source_type,
        "source_id": source_id,
        "occurrence": occurrence,
        "due_at": due_at,
    }


def _rows() -> list[dict[str, object]]:
    ambiguous = datetime(2026, 11, 1, 1, 30)
    return [
        _row("cm_a", ambiguous, NOW),
        _row("cm_b", ambiguous, NOW),  # a shared occurrence and due time
        _row("mp_c", ambiguous, NOW + timedelta(hours=1), "meeting_plan"),
        # The same instant in another zone prints its own wall time; the two sides of a
        # fall-back hour print alike but are different instants.
        _row("cm_d", ambiguous, NOW.astimezone(NEW_YORK)),
        _row("cm_e", ambiguous, ambiguous.replace(tzinfo=NEW_YORK)),
        _row("cm_f", ambiguous, ambiguous.replace(tzinfo=NEW_YORK, fold=1)),
        _row('cm_"quoted"\\é', datetime(2027, 3, 14, 2, 30), NOW),  # escaped, non-ASCII
        _row("cm_g", datetime(2026, 12, 31, 23, 59), None),  # not a planned row's shape
    ]


def test_payload_text_is_json_dumps_of_the_payload_dict():
    rows = _rows()
    expected = [json.dumps(planning._planned_event(row, NOW)["payload"]) for row in rows]
    assert planning._planned_payloads(rows, json.dumps) == expected
    # Another serializer is used as it is, on the payload dict.
    assert planning._planned_payloads(rows, repr) == [
        repr(planning._planned_event(row, NOW)["payload"]) for row in rows
    ]


def test_serialized_event_rows_store_what_event_rows_store(app):
    rows = _rows()[:7]
    dicts = [
        ("checkin.planned", None, "cl_x", "checkin", f"ci_{k}", payload, NOW)
        for k, payload in enumerate(planning._planned_event(row, NOW)["payload"] for row in rows)
    ]
    texts = [
        (*event[:5], text, event[6])
        for event, text in zip(dicts, planning._planned_payloads(rows, json.dumps), strict=True)
    ]
    stored = []
    for append, events in ((append_event_rows, dicts), (append_serialized_event_rows, texts)):
        append(events)
        db.session.flush()
        columns = Event.__table__.c
        found = db.session.execute(
            select(
                columns.type,
                columns.client_id,
                columns.subject_type,
                columns.subject_id,
                columns.payload,
                columns.occurred_at,
                columns.txid.is_(None),
            ).order_by(columns.id)
        ).all()
        raw = db.session.connection().exec_driver_sql(
            "SELECT CAST(payload AS TEXT) FROM events ORDER BY id"
        )
        stored.append((found, [row[0] for row in raw]))
        db.session.rollback()
    assert stored[0] == stored[1]
    assert len(stored[0][0]) == 7
