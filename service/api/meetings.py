"""/api/v1/meetings: the practice's meeting directory (search, add, change; import is elsewhere)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, jsonify, url_for

from service import meetings as core
from service.api.common import json_body, merge_patch, now, validate
from service.api.problems import not_found
from service.api.resources import audit, commit, created, practice_id, register_core_errors
from service.api.schemas.meetings import MeetingIn, MeetingOut, MeetingQuery
from service.api.spec import operation, page_of
from service.db import db
from service.models import Meeting
from service.serialize_plans import meeting_dict

bp = Blueprint("meetings", __name__, url_prefix="/api/v1")
register_core_errors(bp)
TAGS = ("meetings",)
# A `next` cursor that carries an HH:MM `after` filter on: "at1900_<meeting id>".
_TIMED_CURSOR = re.compile(r"at([01][0-9]|2[0-3])([0-5][0-9])_([A-Za-z0-9_]+)")


def _get(meeting_id: str) -> Meeting:
    meeting = db.session.get(Meeting, meeting_id) if len(meeting_id) <= 40 else None
    if meeting is None or meeting.practice_id != practice_id():
        raise not_found("meeting")
    return meeting


def _document(meeting: Meeting) -> dict[str, Any]:
    doc = {key: getattr(meeting, key) for key in core.WRITABLE}
    doc["types"] = list(meeting.types or [])
    return {key: value for key, value in doc.items() if value is not None}


def _split_after(after: str | None) -> tuple[str | None, str | None]:
    """Return (starts-at-or-after HH:MM, id cursor) from the overloaded `after` parameter."""
    if after is None:
        return None, None
    if ":" in after:
        return after, None
    timed = _TIMED_CURSOR.fullmatch(after)
    if timed:
        return f"{timed.group(1)}:{timed.group(2)}", timed.group(3)
    return None, after


@operation(bp, "/meetings", "GET", summary="Search the meeting directory", query=MeetingQuery,
           response=page_of(MeetingOut), tags=TAGS)  # fmt: skip
def list_meetings(query: MeetingQuery) -> Any:
    """Meetings by day, local start time window, type, attendance, fellowship, status or text."""
    starts_after, cursor = _split_after(query.after)
    filters = query.model_dump(exclude={"limit", "after"})
    filters["starts_after"] = starts_after
    stmt = core.search_meetings(practice_id(), filters)
    if cursor is not None:
        stmt = stmt.where(Meeting.id > cursor)
    rows = list(db.session.scalars(stmt.order_by(Meeting.id).limit(query.limit + 1)))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = None
    if more:
        last = rows[-1].id
        next_cursor = f"at{starts_after.replace(':', '')}_{last}" if starts_after else last
    # The directory holds no client data, so reading it is not audited.
    return jsonify({"items": [meeting_dict(m) for m in rows], "next": next_cursor})


@operation(bp, "/meetings", "POST", summary="Add a meeting to the directory", request=MeetingIn,
           response=MeetingOut, status=201, tags=TAGS)  # fmt: skip
def create_meeting() -> Any:
    """Add a meeting by hand; `end_time` defaults to an hour after `time`."""
    data = validate(MeetingIn, json_body())
    meeting = core.create_meeting(practice_id=practice_id(), values=data.model_dump(), now=now())
    audit("meeting.create", subject_type="meeting", subject_id=meeting.id)
    return created(meeting_dict(meeting), url_for("meetings.get_meeting", meeting_id=meeting.id))


@operation(bp, "/meetings/<meeting_id>", "GET", summary="Get a meeting", response=MeetingOut,
           tags=TAGS)  # fmt: skip
def get_meeting(meeting_id: str) -> Any:
    """One meeting of the directory."""
    return jsonify(meeting_dict(_get(meeting_id)))


@operation(bp, "/meetings/<meeting_id>", "PATCH", summary="Change a meeting (merge patch)",
           request=MeetingIn, response=MeetingOut, tags=TAGS)  # fmt: skip
def patch_meeting(meeting_id: str) -> Any:
    """Merge-patch a meeting; plans for it are re-planned when its day, time or zone change."""
    meeting = _get(meeting_id)
    patch = json_body()
    data = validate(MeetingIn, merge_patch(_document(meeting), patch))
    values = data.model_dump()
    if "time" in patch and "end_time" not in patch and meeting.time and meeting.end_time:
        # A moved meeting keeps its length.
        values["end_time"] = core.shifted_end(meeting.time, meeting.end_time, data.time)
    changed = core.update_meeting(meeting, values=values, now=now())
    audit("meeting.update", subject_type="meeting", subject_id=meeting.id,
          detail={"fields": changed})  # fmt: skip
    commit()
    return jsonify(meeting_dict(meeting))
