"""gunicorn settings for production: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

The access log masks the credential in calendar-feed and set-password URLs (the token in
/feeds/<token>.ics is the only thing that guards a client's schedule), so turning the access
log on never writes tokens to disk.

Workers: min(4, 2 × cores) processes of gthread workers with 2 threads each (GUNICORN_WORKERS,
GUNICORN_WORKER_CLASS and GUNICORN_THREADS override them). The service is I/O-bound: a feed
poll on PostgreSQL spends ~40 % of its time waiting for the server's answer, a webhook waits
on the durable commit (and on SQLite for the one write lock), and a sync worker is idle
meanwhile, with a slow request holding a whole process. A thread waiting on the driver,
fsync or a lock releases the GIL, so the worker's other thread serves the polls and pages
queued behind it, and connections are kept alive between requests (a sync worker closes
each one). Two threads, not more: the threads of a worker share one GIL, so more of them
add queueing for CPU-bound requests without adding CPU. Measured (bench.run --only http and
a harness alternating both routes on sync 2 and 4 workers, gthread 2 × 4, 4 × 2 and 4 × 4):
CPU per request is the same for both worker classes (~220-280 µs for the constant route);
the rates on this shared, loaded 2-core machine were too noisy to rank the shapes, while
4 × 4 showed 0.1-1.3 s p99 for polls where 4 × 2 mostly stayed at 10-60 ms. Threads need no
more of the app than processes do: request state is per context (Flask's contextvars), each
thread checks out its own pooled connection (a process's pool allows 10 on PostgreSQL; a
thread that answers feed polls keeps one more of its own for them, feeds.PollReader, so
PostgreSQL's max_connections must allow workers × (10 + threads)), and SQLite keeps one
writer by its own lock plus the webhook's per-request flock (a lock per open file, so
threads of one process exclude each other as processes do);
tests/test_gunicorn_config.py serves concurrent writes and polls this way. The scheduler
never runs here (`flask jobs run`).
"""

from __future__ import annotations

import gc
import multiprocessing
import os

from gunicorn.glogging import Logger

from service.logs import mask_secrets

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", str(min(4, multiprocessing.cpu_count() * 2))))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
timeout = 30
graceful_timeout = 20
# GUNICORN_ACCESS_LOG="" turns the access log off (the benchmarks do, for both routes alike).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
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


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Move what the worker has loaded (modules, the app, compiled statements: ~150,000
    objects) out of the cyclic collector's reach once the app is up. They live as long as the
    worker, and without this every oldest-generation collection walks all of them again from
    inside some request, a stall of tens to hundreds of milliseconds on a busy machine; the
    scheduler process does the same after its start (service/jobs/scheduler.py)."""
    gc.freeze()
