"""enqueue_messages' driver-level INSERT stores what a Core INSERT of the same texts stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import String, cast, delete, select

from service.db import db, insert_new_rows
from service.models import Message
from service.outbox import enqueue_messages

NOW = datetime(2026, 12, 2, 1, 0, 0, 654321, tzinfo=UTC)
_M = Message.__table__


def _texts(people, tag: str) -> list[dict]:
    carol = people.carol
    return [
        {"practice_id": carol.practice_id, "to": carol.phone, "body": "Steadfast: hello (code A1)",
         "purpose": "prompt", "template": "prompt_commitment_self",
         "idempotency_key": f"{tag}:1", "now": NOW, "client_id": carol.id,
         "expires_at": NOW + timedelta(hours=2, microseconds=7)},
        {"practice_id": None, "to": "+15005550199", "body": "Tschüss ñ €", "purpose": "alert",
         "idempotency_key": f"{tag}:2", "now": NOW, "therapist_id": people.alice.therapist.id,
         "send_after": NOW + timedelta(minutes=5), "from_number": "+15005550100"},
        {"practice_id": carol.practice_id, "to": people.dave.phone, "body": None,
         "purpose": "reminder", "idempotency_key": f"{tag}:3", "now": NOW + timedelta(seconds=1),
         "contact_id": people.dave.id},
    ]  # fmt: skip


def _stored(keys: list[str]) -> list[tuple]:
    db.session.expire_all()
    stmt = select(
        *(c for c in _M.c if c.name != "id"),
        cast(_M.c.created_at, String),
        cast(_M.c.send_after, String),
        cast(_M.c.expires_at, String),
    ).where(_M.c.idempotency_key.in_(keys))
    return [tuple(row) for row in db.session.execute(stmt.order_by(_M.c.idempotency_key))]


def _core_reference(texts: list[dict]) -> None:
    """What enqueue_messages wrote before its driver-level INSERT (a Core executemany)."""
    optional = ("client_id", "contact_id", "therapist_id", "checkin_id", "template",
                "from_number", "expires_at")  # fmt: skip
    rows = []
    for n, text in enumerate(texts):
        row = {key: text.get(key) for key in optional}
        row.update(id=f"ms_ref{n}", practice_id=text["practice_id"], direction="outbound",
                   to_number=text["to"], body=text["body"], purpose=text["purpose"],
                   idempotency_key=text["idempotency_key"], status="queued", attempts=0,
                   send_after=text.get("send_after") or text["now"], created_at=text["now"],
                   updated_at=text["now"])  # fmt: skip
        rows.append(row)
    insert_new_rows(_M, rows, ["idempotency_key"])


def test_bulk_enqueue_stores_what_a_core_insert_stores(people):
    texts = _texts(people, "bulk")
    keys = [t["idempotency_key"] for t in texts]
    assert enqueue_messages(texts) == set(keys)
    fast = _stored(keys)
    db.session.execute(delete(_M).where(_M.c.idempotency_key.in_(keys)))
    _core_reference(texts)
    assert fast == _stored(keys)


def test_bulk_enqueue_skips_taken_keys_and_reports_only_what_it_queued(people):
    texts = _texts(people, "taken")
    assert enqueue_messages(texts[1:2]) == {"taken:2"}
    first = db.session.scalar(select(_M.c.id).where(_M.c.idempotency_key == "taken:2"))
    assert enqueue_messages(texts) == {"taken:1", "taken:3"}
    assert enqueue_messages(texts) == set()
    assert db.session.scalar(select(_M.c.id).where(_M.c.idempotency_key == "taken:2")) == first
    ids = db.session.scalars(
        select(_M.c.id).where(_M.c.idempotency_key.in_(["taken:1", "taken:3"])).order_by(_M.c.id)
    ).all()
    keys = db.session.scalars(
        select(_M.c.idempotency_key).where(_M.c.id.in_(ids)).order_by(_M.c.id)
    ).all()
    assert keys == ["taken:1", "taken:3"]  # ids follow the list's order


def test_bulk_enqueue_across_chunks_with_taken_keys_and_empty_columns(people):
    carol = people.carol
    texts = [
        {"practice_id": None, "to": f"+1500555{n:04d}", "body": f"text {n}", "purpose": "prompt",
         "idempotency_key": f"many:{n}", "now": NOW}
        for n in range(1205)
    ]  # fmt: skip
    texts[1100]["client_id"] = carol.id
    taken = [texts[5], texts[1003], texts[1204]]
    assert enqueue_messages(taken) == {t["idempotency_key"] for t in taken}
    want = {t["idempotency_key"] for t in texts} - {t["idempotency_key"] for t in taken}
    assert enqueue_messages(texts) == want
    stored = db.session.execute(
        select(_M.c.idempotency_key, _M.c.client_id, _M.c.expires_at, _M.c.send_after).where(
            _M.c.idempotency_key.like("many:%")
        )
    ).all()
    assert len(stored) == 1205
    assert {r.idempotency_key for r in stored if r.client_id} == {"many:1100"}
    assert all(r.expires_at is None and r.send_after == NOW for r in stored)


def _crockford_value(digits: str) -> int:
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    value = 0
    for digit in digits:
        value = value * 32 + alphabet.index(digit)
    return value


def test_new_ids_have_new_ids_form_time_and_random_bits():
    import time

    from service.db import new_id, new_ids

    before = time.time_ns() // 1_000_000
    single = new_id("ms")
    made = new_ids("ms", 700)
    after = time.time_ns() // 1_000_000
    assert new_ids("ms", 0) == []
    assert len(made) == 700 and len(set(made)) == 700
    for made_id in made:
        assert made_id.startswith("ms_") and len(made_id) == len(single)
        digits = made_id[3:]
        assert set(digits) <= set("0123456789abcdefghjkmnpqrstvwxyz")
        # As new_id's 26 digits: two zero bits, 48 bits of the millisecond, 80 random bits.
        value = _crockford_value(digits)
        assert value >> 128 == 0
        assert before <= value >> 80 <= after
    # Each id's 80 random bits are its own (not shared or shifted between neighbours).
    tails = {_crockford_value(made_id[-16:]) for made_id in made}
    assert len(tails) == 700 and max(tails) >= 1 << 70
    # Every random digit position takes many values across a batch (none stuck).
    for position in range(13, 29):
        assert len({made_id[position] for made_id in made}) > 16
