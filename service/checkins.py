"""Check-ins: planning occurrences ahead, replies, corrections and their lifecycle."""

from __future__ import annotations

from datetime import datetime


def replan_source(source_type: str, source_id: str, *, now: datetime) -> None:
    """Re-plan the future check-ins of one meeting plan or commitment after it changed.

    Placeholder contract for the API: the accountability engine fills this in.
    """


def replan_client(client_id: str, *, now: datetime) -> None:
    """Re-plan (or cancel) every future check-in of a client after a status change.

    Placeholder contract for the API: the accountability engine fills this in.
    """
