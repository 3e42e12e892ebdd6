"""gunicorn settings for production: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

The access log masks the credential in calendar-feed and set-password URLs (the token in
/feeds/<token>.ics is the only thing that guards a client's schedule), so turning the access
log on never writes tokens to disk.
"""

from __future__ import annotations

import multiprocessing
import os

from gunicorn.glogging import Logger

from service.logs import mask_secrets

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", str(min(4, multiprocessing.cpu_count() * 2))))
timeout = 30
graceful_timeout = 20
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


class MaskedLogger(Logger):
    """gunicorn's logger with credentials masked in the request line, path and referer."""

    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f", "{referer}i"):
            if isinstance(atoms.get(key), str):
                atoms[key] = mask_secrets(atoms[key])
        return atoms


logger_class = MaskedLogger
