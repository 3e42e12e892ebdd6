"""The client's calendar feed link, through the feeds core (service/feeds.py) when it is present."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType

from service.models import Client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedLink:
    """What the page shows about a client's feed."""

    available: bool
    url: str | None = None


def core() -> ModuleType | None:
    """Return service.feeds, or None while that module has not landed."""
    try:
        return importlib.import_module("service.feeds")
    except ImportError:
        return None


def current(client: Client) -> FeedLink:
    """Return the client's live feed link (None when revoked or never made)."""
    feeds = core()
    if feeds is None or not hasattr(feeds, "client_feed_url"):
        return FeedLink(available=False)
    return FeedLink(available=True, url=feeds.client_feed_url(client))


def _require() -> ModuleType:
    from flask import abort

    feeds = core()
    if feeds is None:
        logger.warning("service.feeds is not available yet")
        abort(503)
    return feeds


def rotate(client: Client, *, now: datetime) -> str:
    """Issue a new feed link for the client (the old one stops working) and return it."""
    return _require().rotate_client_feed(client, now=now)


def revoke(client: Client, *, now: datetime) -> None:
    """Revoke the client's feed link."""
    _require().revoke_client_feed(client, now=now)
