"""Signed, expiring set-password links that stop working once the password changes."""

from __future__ import annotations

from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from service.db import db
from service.models import Therapist

LINK_MAX_AGE = 24 * 3600
SALT = "steadfast.set-password"


def _serializer(secret_key: str, now: datetime) -> URLSafeTimedSerializer:
    class _ClockSigner(TimestampSigner):
        # itsdangerous reads time.time(); the service's clock is the app's, so tests can move it.
        def get_timestamp(self) -> int:
            return int(now.timestamp())

    return URLSafeTimedSerializer(secret_key, salt=SALT, signer=_ClockSigner)


def _fragment(therapist: Therapist) -> str:
    return (therapist.password_hash or "none")[-16:]


def make_link_token(therapist: Therapist, *, secret_key: str, now: datetime) -> str:
    """Return a token for a set-password link, valid 24 hours and until the password changes."""
    return _serializer(secret_key, now).dumps({"t": therapist.id, "h": _fragment(therapist)})


def read_link_token(token: str, *, secret_key: str, now: datetime) -> Therapist | None:
    """Return the therapist a valid, unexpired, unused link token names, or None."""
    try:
        data = _serializer(secret_key, now).loads(token, max_age=LINK_MAX_AGE)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict):
        return None
    therapist = db.session.get(Therapist, str(data.get("t", "")))
    if therapist is None or not therapist.active or data.get("h") != _fragment(therapist):
        return None
    return therapist
