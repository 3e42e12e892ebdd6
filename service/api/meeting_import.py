"""POST /api/v1/meetings/import: import a TSML, BMLT or CSV feed (inline or by URL) into the directory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify, request
from pydantic import Field
from sqlalchemy.exc import IntegrityError

from service.api.common import json_body, now, settings, validate
from service.api.problems import ApiError, field_error
from service.api.resources import audit, commit, practice_id
from service.api.schemas.fields import ReadModel, RecoveryPath, StrictModel, text
from service.api.spec import operation
from service.meeting_import import ImportFailed, import_decoded, import_source

logger = logging.getLogger(__name__)

bp = Blueprint("meeting_import", __name__, url_prefix="/api/v1")
TAGS = ("meetings",)
# A 10,000-meeting feed is a few MiB of JSON; the rest of the API keeps the app's 1 MiB.
MAX_IMPORT_BYTES = 20 * 1024 * 1024
SOURCES = ("feed", "csv", "url")


@bp.before_request
def _allow_feed_sized_bodies() -> None:
    # Flask 3.1 reads the limit per request, so this raises it for this blueprint only.
    request.max_content_length = MAX_IMPORT_BYTES


class ImportIn(StrictModel):
    """Exactly one of `feed`, `csv` or `url`; inline feeds name their `feed_key`."""

    feed: list[Any] | None = Field(
        None, description="A Meeting Guide (TSML) or BMLT JSON array of meetings."
    )
    csv: str | None = Field(None, max_length=MAX_IMPORT_BYTES, description="CSV text.")
    url: text(2000, min_length=1) | None = Field(  # type: ignore[valid-type]
        None, description="An http(s) feed URL, remembered and refreshed periodically."
    )
    timezone: text(64, min_length=1) | None = Field(  # type: ignore[valid-type]
        None, description="IANA zone for meetings whose feed row names none."
    )
    fellowship: RecoveryPath | None = Field(
        None, description="Defaults to aa (TSML, CSV) or na (BMLT), or the feed's remembered one."
    )
    feed_key: text(500, min_length=1) | None = Field(  # type: ignore[valid-type]
        None,
        description="The feed's identity in the practice: required for feed/csv, "
        "defaults to the URL. Re-importing a key updates its meetings and deactivates "
        "those no longer listed.",
    )


class SkippedOut(ReadModel):
    """A feed row that was not imported, and why."""

    slug: str | None
    reason: str


class ImportReportOut(ReadModel):
    """What the import did."""

    created: int
    updated: int
    unchanged: int
    deactivated: int
    skipped: list[SkippedOut]


def _source_field(body: ImportIn) -> str:
    given = [name for name in SOURCES if getattr(body, name) is not None]
    if len(given) != 1:
        message = "give exactly one of feed, csv or url"
        raise ApiError(422, message, errors={name: [message] for name in (given or SOURCES)})
    if given[0] != "url" and body.feed_key is None:
        raise field_error("feed_key", "required with an inline feed or csv")
    return given[0]


@operation(bp, "/meetings/import", "POST", summary="Import a meeting feed", request=ImportIn,
           response=ImportReportOut, tags=TAGS, errors=(409, 413))  # fmt: skip
def import_meetings() -> Any:
    """Upsert a feed into the directory by (feed_key, slug); always 200 with the report.

    New meetings are created, changed ones updated, unchanged ones left alone; meetings the
    feed no longer lists become inactive and each client plan on them raises a
    `meeting_inactive` alert. A feed that cannot be fetched or parsed changes nothing (422
    naming `feed`, `csv` or `url`). Bodies may be up to 20 MiB. A URL must resolve to a public
    address unless the server allows private feed URLs.
    """
    body = validate(ImportIn, json_body())
    source = _source_field(body)
    try:
        if source == "url":
            report = import_source(
                practice=practice_id(), source=body.url, feed_key=body.feed_key,
                default_timezone=body.timezone, fellowship=body.fellowship,
                allow_private=settings().ALLOW_PRIVATE_FEED_URLS, now=now(),
            )  # fmt: skip
        else:
            report = import_decoded(
                practice=practice_id(), data=getattr(body, source), feed_key=body.feed_key,
                default_timezone=body.timezone, fellowship=body.fellowship, now=now(),
            )  # fmt: skip
    except ImportFailed as exc:
        field = source if exc.field == "source" else exc.field
        raise ApiError(
            422, f"the feed was not imported: {exc.message}", errors={field: [exc.message]}
        ) from None
    except IntegrityError:
        # Two first imports of one feed key (or slug) raced; the other one won.
        raise ApiError(409, "another import of this feed ran at the same time; retry") from None
    result = report.as_dict()
    audit(
        "meetings.import", subject_type="meeting_feed", subject_id=report.feed_id,
        detail={"source": source, "feed_key": report.feed_key,
                **{k: v for k, v in result.items() if k != "skipped"},
                "skipped": len(report.skipped)},
    )  # fmt: skip
    commit()
    return jsonify(result)
