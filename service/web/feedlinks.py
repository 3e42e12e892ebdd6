"""The calendar feed links shown on the dashboard (tokens themselves live in service.feeds)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from service import feeds
from service.models import Client, Therapist

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedLink:
    """What a page shows about a feed: its https link and the webcal:// one, if it is live."""

    url: str | None = None
    webcal: str | None = None
    available: bool = True


def _link(url: str | None) -> FeedLink:
    if url is None:
        return FeedLink()
    return FeedLink(url=url, webcal="webcal://" + url.split("://", 1)[1])


def current(client: Client) -> FeedLink:
    """Return the client's live feed link (empty when revoked or never made)."""
    return _link(feeds.client_feed_url(client))


def rotate(client: Client, *, now: datetime) -> str:
    """Issue a new feed link for the client (the old one stops working) and return it."""
    return feeds.rotate_client_feed(client, now=now)


def revoke(client: Client, *, now: datetime) -> bool:
    """Revoke the client's feed link; return whether there was one."""
    return feeds.revoke_client_feed(client, now=now)


def therapist_current(therapist: Therapist) -> FeedLink:
    """Return the therapist's own feed link (all their clients' sessions)."""
    return _link(feeds.therapist_feed_url(therapist))


def therapist_rotate(therapist: Therapist, *, now: datetime) -> str:
    """Issue a new feed link for the therapist."""
    return feeds.rotate_therapist_feed(therapist, now=now)


def therapist_revoke(therapist: Therapist, *, now: datetime) -> bool:
    """Revoke the therapist's feed link."""
    return feeds.revoke_therapist_feed(therapist, now=now)
