"""The practice's meeting directory: create, change, search (imports live in meeting_import/)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, and_, cast, func, or_, select

from service import checkins
from service.db import db, new_id
from service.events import append_event
from service.models import Meeting, MeetingPlan

logger = logging.getLogger(__name__)

WRITABLE = (
    "name", "day", "time", "end_time", "timezone", "fellowship", "location", "address",
    "conference_url", "conference_phone", "types", "notes",
)  # fmt: skip
# Changes that move or stop the check-ins of every plan for the meeting.
_SCHEDULE_FIELDS = frozenset({"day", "time", "end_time", "timezone"})


def derive_attendance(
    *,
    address: str | None,
    conference_url: str | None,
    conference_phone: str | None,
    types: list[str] | None,
) -> str:
    """Return in_person, online, hybrid or inactive from the address and conference info."""
    online = bool(conference_url or conference_phone)
    closed = "TC" in (types or [])  # TSML: location temporarily closed
    physical = bool(address) and not closed
    if online:
        return "hybrid" if physical else "online"
    return "inactive" if closed else "in_person"


def default_end_time(start: str) -> str:
    """Return the local time an hour after `start` (HH:MM), wrapping past midnight."""
    hours, minutes = (int(part) for part in start.split(":"))
    return f"{(hours + 1) % 24:02d}:{minutes:02d}"


def shifted_end(old_start: str, old_end: str, new_start: str) -> str:
    """Return the end time that keeps a meeting's length when it moves to `new_start`."""

    def minutes(value: str) -> int:
        hours, mins = (int(part) for part in value.split(":"))
        return hours * 60 + mins

    length = (minutes(old_end) - minutes(old_start)) % (24 * 60) or 60
    end = (minutes(new_start) + length) % (24 * 60)
    return f"{end // 60:02d}:{end % 60:02d}"


def create_meeting(*, practice_id: str, values: dict[str, Any], now: datetime) -> Meeting:
    """Add a meeting to the practice's directory by hand."""
    fields = {key: values[key] for key in WRITABLE if key in values}
    if not fields.get("end_time") and fields.get("time"):
        fields["end_time"] = default_end_time(fields["time"])
    meeting = Meeting(
        id=new_id("mt"),
        practice_id=practice_id,
        active=True,
        created_at=now,
        updated_at=now,
        revision=0,
        **fields,
    )
    meeting.attendance = _attendance(meeting)
    db.session.add(meeting)
    db.session.flush()
    append_event(
        "meeting.created", now=now, practice_id=practice_id,
        subject_type="meeting", subject_id=meeting.id,
    )  # fmt: skip
    return meeting


def update_meeting(meeting: Meeting, *, values: dict[str, Any], now: datetime) -> list[str]:
    """Apply changed fields and re-plan every live plan for the meeting when its time moved."""
    values = dict(values)
    if not values.get("end_time") and values.get("time"):
        values["end_time"] = default_end_time(values["time"])
    changed = [key for key in WRITABLE if key in values and getattr(meeting, key) != values[key]]
    if not changed:
        return []
    for key in changed:
        setattr(meeting, key, values[key])
    meeting.attendance = _attendance(meeting)
    meeting.updated_at = now
    meeting.revision = (meeting.revision or 0) + 1
    append_event(
        "meeting.updated", now=now, practice_id=meeting.practice_id,
        subject_type="meeting", subject_id=meeting.id, payload={"fields": changed},
    )  # fmt: skip
    if _SCHEDULE_FIELDS.intersection(changed):
        plan_ids = db.session.scalars(
            select(MeetingPlan.id).where(
                MeetingPlan.meeting_id == meeting.id, MeetingPlan.archived_at.is_(None)
            )
        )
        for plan_id in list(plan_ids):
            checkins.replan_source("meeting_plan", plan_id, now=now)
    return changed


def _attendance(meeting: Meeting) -> str:
    return derive_attendance(
        address=meeting.address,
        conference_url=meeting.conference_url,
        conference_phone=meeting.conference_phone,
        types=list(meeting.types or []),
    )


def escape_like(text: str) -> str:
    """Escape LIKE wildcards so user text matches literally (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_meetings(practice_id: str, filters: dict[str, Any]) -> Select[Any]:
    """Return a query for the practice's meetings matching the filters (None means any)."""
    stmt = select(Meeting).where(Meeting.practice_id == practice_id)
    if filters.get("day") is not None:
        stmt = stmt.where(Meeting.day == filters["day"])
    if filters.get("starts_after") is not None:
        stmt = stmt.where(Meeting.time.is_not(None), Meeting.time >= filters["starts_after"])
    if filters.get("before") is not None:
        stmt = stmt.where(Meeting.time.is_not(None), Meeting.time < filters["before"])
    if filters.get("attendance") is not None:
        stmt = stmt.where(Meeting.attendance == filters["attendance"])
    if filters.get("fellowship") is not None:
        stmt = stmt.where(Meeting.fellowship == filters["fellowship"])
    if filters.get("active") is not None:
        stmt = stmt.where(Meeting.active.is_(filters["active"]))
    if filters.get("q"):
        pattern = f"%{escape_like(filters['q'].lower())}%"
        stmt = stmt.where(
            or_(
                *(
                    func.lower(column).like(pattern, escape="\\")
                    for column in (Meeting.name, Meeting.location, Meeting.address, Meeting.notes)
                )
            )
        )
    if filters.get("type"):
        stmt = stmt.where(_has_type(filters["type"]))
    return stmt


def _has_type(code: str) -> Any:
    # Types are a JSON list; matching the quoted element in its text form works on SQLite and
    # PostgreSQL alike and cannot match a longer code ("O" never matches "ONL").
    quoted = json.dumps(code)
    text = cast(Meeting.types, String)
    return and_(Meeting.types.is_not(None), text.like(f"%{escape_like(quoted)}%", escape="\\"))
