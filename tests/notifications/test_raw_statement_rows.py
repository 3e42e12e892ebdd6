"""RawStatement tells a statement that returned rows from one that did not without psycopg's
`cursor.description` (which builds a Column object per column on every read)."""

from __future__ import annotations

import pytest
from sqlalchemy import literal_column, select, text

from service.db import db
from service.models import Message
from service.notifications import replies

STATEMENTS = {
    "rows": "SELECT 1 AS a, 2 AS b",
    "no rows, but a result set": "SELECT 1 AS a WHERE 1 = 0",
    "no result set": "UPDATE messages SET attempts = attempts WHERE id = 'none'",
}


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_returns_rows_agrees_with_the_cursor_description(app, name):
    cursor = db.session.connection().connection.cursor()
    try:
        cursor.execute(STATEMENTS[name])
        assert replies._returns_rows(cursor) is (cursor.description is not None)
        assert replies._returns_rows(cursor) is (name != "no result set")
    finally:
        cursor.close()


def test_a_raw_statement_reads_rows_and_an_update_reads_none(app):
    # Through the cursor (nothing listens to the engine here): rows where the statement
    # has them, [] for an UPDATE without RETURNING, on the dialect the suite runs on.
    select_two = replies.RawStatement(lambda _d: select(literal_column("2").label("two")))
    update = replies.RawStatement(
        lambda _d: (
            Message.__table__.update().where(Message.__table__.c.id == "none").values(attempts=0)
        )
    )
    connection = db.session.connection()
    assert select_two.rows(connection, {}) == [(2,)]
    assert update.rows(connection, {}) == []
    assert connection.execute(text("SELECT count(*) FROM messages")).scalar() == 0
