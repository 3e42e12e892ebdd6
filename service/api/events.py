"""/api/v1/events: the practice's event stream, read with an `after` cursor."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from service.api.problems import ApiError
from service.api.resources import audit, client_or_404, commit, practice_id
from service.api.schemas.accountability import EventOut, EventQuery
from service.api.serialize_engine import event_dict
from service.api.spec import operation, page_of
from service.events import CursorError, read_events

bp = Blueprint("events", __name__, url_prefix="/api/v1")


@operation(bp, "/events", "GET", summary="Read the event stream", query=EventQuery,
           response=page_of(EventOut), tags=("events",))  # fmt: skip
def list_events(query: EventQuery) -> Any:
    """Events after the cursor, each exactly once: pass the last id you saw as `after`.

    `next` is set when a full page came back; poll again with the last id when it is null.
    An event whose transaction is still in flight appears only once it commits, in order.
    """
    client_id = client_or_404(query.client_id).id if query.client_id else None
    after = int(query.after) if query.after else None
    try:
        # Read before auditing: this request's own write must not hold the stream back.
        events, cursor = read_events(
            practice_id=practice_id(), after=after, limit=query.limit, type=query.type,
            client_id=client_id,
        )  # fmt: skip
    except CursorError:
        raise ApiError(422, "after is not a cursor", errors={"after": ["no such event"]}) from None
    items = [event_dict(event) for event in events]
    audit("event.list", subject_type="event", client_id=client_id,
          detail={"count": len(items), "after": after})  # fmt: skip
    commit()
    full = len(items) == query.limit
    return jsonify({"items": items, "next": str(cursor) if full and cursor else None})
