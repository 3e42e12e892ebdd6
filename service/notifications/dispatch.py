"""Outbox dispatch: claim queued texts, re-check them at send time, send, record, retry, reconcile.

Transactions: unlike the rest of the core, dispatch commits by itself. A batch of claims is
committed before the provider is called for any of them (so a second dispatcher never takes
the same rows), and the outcomes of finished sends are committed with the next claim (at
the latest once a batch of them is waiting or no send has finished for a moment, and at
the end of the run). A crash between a send and that commit leaves its row `sending` (as
it leaves a text claimed but not sent yet): the next run reconciles it with the provider
after the lease, before any resend.

Sends run on a few threads (the database work stays on the caller's thread and session), so
the round trips to the provider overlap with each other and with the claims and checks of
the next texts: without SMS_MPS a few sends per thread are handed over at once, so the
threads stay busy while this thread claims and checks. Two texts to one number are never in
flight together: the daily cap, an opt-out answered by the provider and the send-time checks
see every earlier text to it. The number handed over starts at one and doubles with each
success (back to one on a provider-wide failure, and the sends handed over behind that
failure are given back untried), so a provider that is down costs BREAKER attempts and the
sends already running beside them, not a pool-full.
SMS_MPS is kept by a token bucket whose slots are reserved on the caller's thread as texts
are handed over, about _PACED_AHEAD_SECONDS ahead; each sender thread waits for its slot.
So the time a send or the database takes does not push later slots back.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Integer, String, any_, bindparam, func, not_, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from service.db import bound_list, db, id_in, in_bound
from service.events import EVENT_ROW_COLUMNS, append_event_rows
from service.models import Message
from service.notifications import gate, policy
from service.notifications.optout import opt_out_number
from service.notifications.outcomes import give_up, sent_event, settle
from service.notifications.providers import (
    SEND_CONNECTIONS,
    DeliveryError,
    SendResult,
    SmsProvider,
)
from service.notifications.reconcile import reconcile_abandoned
from service.notifications.throttle import TokenBucket
from service.phones import mask

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 200
# Consecutive provider-wide failures (5xx, 429, timeouts, bad credentials) after which this
# run stops: hammering a provider that is down only burns the messages' attempts.
BREAKER = 3
# Sender threads; 0 sends on the caller's thread, one at a time.
DEFAULT_WORKERS = 4
# Without SMS_MPS, sends handed to the pool at once per sender thread: the ones queued
# behind the running sends keep the threads busy while this thread claims and checks.
_QUEUED_PER_SENDER = 4
# Texts claimed (and checked) in one transaction.
BATCH = 32
# Outcomes are committed with the next claim, once a batch of them waits, or when no send
# has finished for this long.
_OUTCOME_WAIT_SECONDS = 0.05
# With SMS_MPS set, sender threads (most of them waiting for their slot) at most.
_MAX_PACED_SENDERS = SEND_CONNECTIONS
# With SMS_MPS set, texts are claimed and their slots reserved about this far ahead.
_PACED_AHEAD_SECONDS = 0.25
# Candidates read per claim beyond twice the batch, to skip numbers already in flight.
_CANDIDATE_SLACK = 8
# Test-only: with STEADFAST_ENV=test, the process dies (os._exit) right after the Nth
# successful provider.send returns, before the outcome is committed. Inert otherwise.
CRASH_AFTER_SEND_ENV = "STEADFAST_TEST_CRASH_AFTER_SEND"
_UNLIMITED = ("console", "fake")
_sends_this_process = 0
_M = Message.__table__


@dataclass(eq=False)  # hashed by identity: the key of a send in flight
class _InFlight:
    message: gate.Claimed
    recipient: gate.Recipient
    request: dict[str, Any]


# What became of one send: (its flight, the provider's result, or the exception it raised).
_Finished = tuple[_InFlight, SendResult | None, BaseException | None]


class _Senders:
    """Sender threads: each takes a send from `jobs`, and puts what became of it on `done`.

    Two C-level queues and nothing else: a send handed over costs one put and one get on
    each side (no future, no waiter per send), so the threads take as little as possible
    of the interpreter lock from the thread that claims and checks.
    """

    def __init__(self, count: int, done: queue.SimpleQueue[_Finished]) -> None:
        self.count = count
        self.done = done
        self.jobs: queue.SimpleQueue[tuple[_InFlight, tuple[Any, ...]] | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []

    def submit(self, flight: _InFlight, args: tuple[Any, ...]) -> None:
        if len(self.threads) < self.count:  # started as sends are handed over, as needed
            thread = threading.Thread(
                target=self._work, name=f"sms-send_{len(self.threads)}", daemon=True
            )
            thread.start()
            self.threads.append(thread)
        self.jobs.put((flight, args))

    def _work(self) -> None:
        jobs, done = self.jobs, self.done
        while (job := jobs.get()) is not None:
            flight, args = job
            try:
                done.put((flight, _provider_send(*args), None))
            except BaseException as exc:  # noqa: BLE001 - handed back to the run's thread
                done.put((flight, None, exc))

    def close(self) -> None:
        """Let the sends handed over finish, then stop the threads."""
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()


def dispatch_outbox(
    *,
    now: datetime,
    provider: SmsProvider,
    settings: Any = None,
    limit: int = DEFAULT_LIMIT,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    bucket: TokenBucket | None = None,
    message_ids: Collection[str] | None = None,
    workers: int = DEFAULT_WORKERS,
) -> int:
    """Send the due queued texts (at most `limit`) through provider; return how many went out.

    `workers` sender threads overlap the provider's round trips (0: send on this thread).
    """
    settings = settings if settings is not None else current_app.extensions["settings"]
    rng = rng or random.Random()
    if bucket is None:
        rate = 0.0 if provider.name in _UNLIMITED else float(settings.SMS_MPS)
        bucket = TokenBucket(rate, 1, sleep=sleep)
    db.session.commit()  # claims are committed batch by batch; start from a clean transaction
    with _no_full_collections():
        sent = reconcile_abandoned(now=now, provider=provider, message_ids=message_ids)
        run = _Run(now, provider, settings, rng, bucket, message_ids, limit, workers)
        session = db.session()
        expire = session.expire_on_commit
        # The run reads and writes with Core statements and holds no ORM objects of its own:
        # expiring the session's objects at each of its commits would only cost re-reads.
        session.expire_on_commit = False
        try:
            return sent + run.loop()
        finally:
            session.expire_on_commit = expire
            run.close()
            session.expire_all()  # the caller sees the database as it is, as after any commit


_GC_LOCK = threading.Lock()
_GC_RUNS = 0  # runs under way in this process (threads)
_GC_SAVED = 0  # the oldest generation's threshold before the first of them
# The oldest generation's threshold during a run: its count (young collections since the
# last full one) never gets there, so no full collection starts.
_NO_FULL_PASS = 1 << 30


@contextmanager
def _no_full_collections() -> Iterator[None]:
    """Keep the cycle collector's full passes out of the run.

    A run allocates enough (statements, rows, HTTP requests) to set off a full collection
    now and then, and a full collection walks every object of the process (the app, its
    mappings, the twilio library's thousands of classes): 60-80 ms in the middle of a run,
    measured, with the interpreter lock held. During the run only the oldest generation's
    threshold is raised, so the young collections go on (what the run allocates and drops
    is collected as before) and what reaches the oldest generation waits for the first full
    collection after the run. O(1): the frozen heap is neither counted nor touched (counting
    it, gc.get_freeze_count(), walks every frozen object: ~14 ms in the bench's process).
    Process-wide, so the threshold is put back when the last run under way ends, unless
    someone else set it meanwhile.
    """
    global _GC_RUNS, _GC_SAVED
    with _GC_LOCK:
        if _GC_RUNS == 0:
            young, middle, _GC_SAVED = gc.get_threshold()
            gc.set_threshold(young, middle, _NO_FULL_PASS)
        _GC_RUNS += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_RUNS -= 1
            young, middle, oldest = gc.get_threshold()
            if _GC_RUNS == 0 and oldest == _NO_FULL_PASS:
                gc.set_threshold(young, middle, _GC_SAVED)


class _Run:
    """One dispatch run: claims, checks and outcomes on this thread, sends on the pool."""

    def __init__(
        self,
        now: datetime,
        provider: SmsProvider,
        settings: Any,
        rng: random.Random,
        bucket: TokenBucket,
        message_ids: Collection[str] | None,
        limit: int,
        workers: int,
    ) -> None:
        self.now, self.provider, self.settings, self.rng = now, provider, settings, rng
        self.bucket, self.limit = bucket, limit
        self.message_ids = list(message_ids) if message_ids is not None else None
        self.stale = timedelta(minutes=settings.STALE_PROMPT_MINUTES)
        self.callback = f"{settings.PUBLIC_BASE_URL}/twilio/status"
        workers = max(0, int(workers))
        self.most = max(1, workers)  # sender threads busy at once
        self.batch = BATCH
        if not bucket.unlimited and workers > 0:
            # Reserve slots about _PACED_AHEAD_SECONDS ahead, so that this thread's own
            # work (claims, checks, outcomes) never makes a slot go by unused; a sender
            # thread waiting for its slot costs nothing. Texts are claimed and checked
            # no further ahead than that.
            ahead = max(2, int(bucket.rate * _PACED_AHEAD_SECONDS))
            self.batch = min(BATCH, ahead)
            self.most = workers = min(ahead, _MAX_PACED_SENDERS)
            self.depth = self.most  # every send handed over is running (or waiting its slot)
        else:
            self.depth = self.most * (_QUEUED_PER_SENDER if workers > 0 else 1)
        # What became of each send handed over, in the order they ended.
        self.done: queue.SimpleQueue[_Finished] = queue.SimpleQueue()
        self.pool = _Senders(workers, self.done) if workers > 0 else None
        # Set by a sender whose send failed provider-wide: the sends handed over behind it
        # are then given back untried (not sent, not counted as attempts).
        self.halted = threading.Event()
        self.window = 1  # sends handed over and not finished, at most (up to depth)
        self.ready: deque[_InFlight] = deque()  # claimed and checked, waiting for a sender
        self.inflight: set[_InFlight] = set()  # handed over, not yet taken off `done`
        self.started = time.monotonic()
        self.unsaved = 0  # outcomes recorded since the last commit
        self.sent: list[tuple[gate.Claimed, SendResult]] = []  # sends to record as sent

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()

    def clock(self) -> datetime:
        # Claims carry the real elapsed time, so a long run's later claims do not look
        # abandoned to another dispatcher whose lease check uses a later instant.
        return self.now + timedelta(seconds=time.monotonic() - self.started)

    def loop(self) -> int:
        sent = streak = claimed = 0
        stop = drained = False
        finished: list[_Finished] = []
        while True:
            done = self.done
            while True:
                try:
                    finished.append(done.get_nowait())
                except queue.Empty:
                    break
            for flight, result, error in finished:
                self.inflight.discard(flight)
                outcome = self._record(flight, result, error)
                if outcome == "sent":
                    sent += 1
                    streak = 0
                    self.window = min(self.depth, self.window * 2)
                elif outcome == "provider_down":
                    streak += 1
                    self.window = 1
            finished.clear()
            if streak >= BREAKER and not stop:
                logger.warning("dispatch: provider failing, stopping this run")
                stop = True
                self._release(self.ready)
            if self.ready and len(self.inflight) < self.window:
                self._send(self.ready.popleft())
                continue
            more = not (stop or drained or self.ready) and claimed < self.limit
            if more:
                # Claim and check the next batch while the sends in flight go on; the
                # claim's commit carries the outcomes recorded so far.
                left = self.limit - claimed
                batch = self._claim(min(self.batch, left), left if self.bucket.unlimited else None)
                if batch:
                    claimed += len(batch)
                    self._check(batch)
                    continue
                # Nothing claimable: done, unless the rest is to numbers still in flight.
                drained = not self.inflight
            if not self.inflight:
                self._commit()
                return sent
            # Outcomes ride on the next claim's commit; no more than a batch of them ever
            # waits, and none waits longer than _OUTCOME_WAIT_SECONDS without a send ending.
            if self.unsaved >= self.batch:
                self._commit()
            timeout = _OUTCOME_WAIT_SECONDS if self.unsaved else None
            try:
                finished.append(self.done.get(timeout=timeout))
            except queue.Empty:
                self._commit()

    def _commit(self) -> None:
        self._save_sent()
        db.session.commit()
        self.unsaved = 0

    def _claim(self, room: int, left: int | None) -> list[gate.Claimed]:
        """Claim (committed) up to `room` due texts to numbers not in flight or waiting.

        With `left` (the run's limit minus its claims so far), a text passed over for its
        number keeps its place: near the limit the run waits for the number rather than
        sending later texts instead. Paced runs pass None: waiting would leave slots unused.
        """
        busy = sorted({f.message.to_number for f in (*self.inflight, *self.ready)})
        dialect = db.session.get_bind().dialect.name
        claim, probe = _claim_statements(dialect, self.message_ids is not None)
        params: dict[str, Any] = {
            "due": self.now,
            "scan": 2 * room + len(busy) + _CANDIDATE_SLACK,
            "busy": bound_list(dialect, busy),
            "room": room,
            "left": _NO_LEFT if left is None else left,
        }
        if self.message_ids is not None:
            params["only"] = bound_list(dialect, self.message_ids)
        for _ in range(20):  # another dispatcher may win a race for rows; try the next ones
            params["claim_at"] = self.clock()
            # The claim and the rows it won, as the UPDATE left them (only the columns
            # dispatch uses), in one statement.
            won = [gate.Claimed(*row) for row in db.session.execute(claim, params)]
            # The claims (and the outcomes recorded before them) are committed before any
            # of these texts can reach the provider.
            self._commit()
            if won:
                return sorted(won, key=lambda m: (m.send_after, m.id))
            lost = db.session.execute(probe, params).first() is not None
            db.session.commit()  # the check's row locks (PostgreSQL) go at once
            if not lost:
                return []  # nothing claimable, rather than a race lost to another dispatcher
        return []

    def _check(self, batch: list[gate.Claimed]) -> None:
        """Re-check each claimed text now; record skips and deferrals, queue the rest to send."""
        with gate.prefetched(batch, self.now):
            # Decide for the whole batch first: only reads happen since the claim was
            # committed, so a message that cannot be checked is rolled back alone.
            decided: list[tuple[gate.Claimed, policy.Decision | str, gate.Recipient | None]] = []
            for message in batch:
                try:
                    decision, recipient = gate.decide(message, self.now, self.settings)
                except Exception as exc:  # noqa: BLE001 - one unreadable message must not block
                    db.session.rollback()
                    logger.exception("dispatch: message %s cannot be checked; not sent",
                                     message.id)  # fmt: skip
                    decided.append((message, f"send-time check failed: {type(exc).__name__}",
                                    None))  # fmt: skip
                    continue
                decided.append((message, decision, recipient))
            skipped: list[tuple[gate.Claimed, str]] = []
            for message, decision, recipient in decided:
                if isinstance(decision, str):
                    settle(message, self.now, status="failed", error_message=decision)
                    continue
                if message.body is None:
                    decision = policy.Decision(policy.SKIP, "no body")
                if decision.action == policy.SEND:
                    self.ready.append(_InFlight(message, recipient, self._request(message)))
                elif decision.action == policy.SKIP:
                    skipped.append((message, decision.reason))
                    logger.info("dispatch: message %s skipped: %s", message.id, decision.reason)
                else:
                    settle(
                        message,
                        self.now,
                        status="queued",
                        send_after=decision.until,
                        attempts=message.attempts - 1,  # waiting out quiet hours is not a try
                        claimed_at=None,
                        error_message=f"deferred: {decision.reason}",
                        # Staleness runs from the new send time, not from when it was queued.
                        expires_at=message.expires_at or decision.until + self.stale,
                    )
            _settle_skipped(skipped, self.now)

    def _request(self, message: gate.Claimed) -> dict[str, Any]:
        return {
            "to": message.to_number,
            "body": message.body,
            "sender": gate.sender_for(message),
            "status_callback": self.callback,
            "validity_seconds": policy.validity_seconds(
                message.expires_at, self.now, message.purpose, self.stale
            ),
            "idempotency_key": message.idempotency_key or message.id,
        }

    def _release(self, flights: deque[_InFlight]) -> None:
        """Put claimed texts that will not be sent in this run back in the queue, untried."""
        while flights:
            message = flights.popleft().message
            settle(message, self.now, status="queued", claimed_at=None,
                   attempts=message.attempts - 1)  # fmt: skip

    def _send(self, flight: _InFlight) -> None:
        """Hand one checked text to a sender, with its slot of the rate limit reserved now."""
        slot = None if self.bucket.unlimited else self.bucket.reserve()
        args = (self.provider, self.settings, flight.request, self.bucket, slot)
        if self.pool is not None:
            if not self.inflight:
                self.halted.clear()  # nothing handed over earlier can still be withheld
            self.pool.submit(flight, (*args, self.halted))
        else:
            try:
                self.done.put((flight, _provider_send(*args), None))
            except DeliveryError as error:
                self.done.put((flight, None, error))
        self.inflight.add(flight)

    def _record(
        self, flight: _InFlight, result: SendResult | None, error: BaseException | None
    ) -> str:
        """Record what became of one send (committed later); return what it was."""
        message, now = flight.message, self.now
        if isinstance(error, _Withheld):
            self.ready.appendleft(flight)  # not tried: it waits for the window like the rest
            return "withheld"
        if isinstance(error, DeliveryError):
            self.unsaved += 1
            self._save_sent()
            return _failed(message, error, now, self.rng, flight.recipient)
        if error is not None:
            raise error
        assert result is not None
        self.unsaved += 1
        self.sent.append((message, result))
        logger.info("dispatch: message %s sent to %s as %s", message.id,
                    mask(message.to_number), result.sid)  # fmt: skip
        return "sent"

    def _save_sent(self) -> None:
        """Record the sends that went out since the last commit, in one UPDATE (executemany)."""
        if not self.sent:
            return
        done, self.sent = self.sent, []
        now = self.now
        moved = _moved(
            _MARK_SENT,
            [m.id for m, _ in done],
            {"_provider_sid": [r.sid for _, r in done], "_segments": [r.segments for _, r in done]},
            now,
        )
        if moved is None:
            # Some row changed under us (e.g. reconciled by another dispatcher after a
            # long stall): find the ones this statement moved.
            moved = set(
                db.session.scalars(
                    select(_M.c.id).where(
                        id_in(_M.c.id, [m.id for m, _ in done]),
                        id_in(_M.c.provider_sid, [r.sid for _, r in done]),
                        _M.c.sent_at == now,
                    )
                )
            )
        events = []
        for message, result in done:
            if message.id not in moved:
                logger.warning("dispatch: message %s changed under us; not recorded as sent",
                               message.id)  # fmt: skip
                continue
            message.status, message.provider_sid, message.segments = (
                "sent",
                result.sid,
                result.segments,
            )
            message.sent_at = message.updated_at = now
            message.error_code = message.error_message = None
            event = sent_event(message, now, {"segments": result.segments})
            events.append(tuple(event[name] for name in EVENT_ROW_COLUMNS))
        append_event_rows(events)


# `left` for a run that does not keep passed-over texts' places: no place is that far.
_NO_LEFT = 2**31 - 1
_CLAIM_STATEMENTS: dict[tuple[str, bool], tuple[Any, Any]] = {}


def _claim_statements(dialect: str, only: bool) -> tuple[Any, Any]:
    """The claim (an UPDATE ... RETURNING) and its probe (is anything claimable left?).

    Built once per dialect; each claim binds its own values: `due` (the run's now), `scan`
    (candidates read), `busy` (numbers in flight or waiting), `room`, `left`, `claim_at`,
    and `only` (the run's message ids) when `only`.
    """
    key = (dialect, only)
    built = _CLAIM_STATEMENTS.get(key)
    if built is not None:
        return built
    # The due texts in order (locked on PostgreSQL; other dispatchers' locked rows are
    # skipped), each with its place and whether it is the first to its number.
    candidates = (
        select(_M.c.id, _M.c.to_number, _M.c.send_after)
        .where(
            _M.c.status == "queued",
            _M.c.direction == "outbound",
            _M.c.send_after <= bindparam("due", type_=_M.c.send_after.type),
        )
        .order_by(_M.c.send_after, _M.c.id)
        .limit(bindparam("scan", type_=Integer))
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's UPDATE holds the lock
    )
    if only:
        candidates = candidates.where(in_bound(_M.c.id, "only", dialect))
    cand = candidates.subquery("cand")
    in_order = (cand.c.send_after, cand.c.id)
    ranked = select(
        cand.c.id,
        cand.c.to_number,
        func.row_number().over(order_by=in_order).label("place"),
        func.row_number().over(partition_by=cand.c.to_number, order_by=in_order).label("nth"),
    ).subquery("ranked")
    # The first text to each number not in flight or waiting, in order, up to `room`, only
    # among the first `left` due texts (a text passed over keeps its place).
    chosen = (
        select(ranked.c.id)
        .where(
            ranked.c.nth == 1,
            not_(in_bound(ranked.c.to_number, "busy", dialect)),
            ranked.c.place <= bindparam("left", type_=Integer),
        )
        .order_by(ranked.c.place)
        .limit(bindparam("room", type_=Integer))
    )
    if dialect == "postgresql":
        # The chosen ids as one array, computed once (an InitPlan), then looked up. As
        # `id IN (subquery)` the planner, which takes the freshly queued texts for about
        # one row until they are analysed, joined every queued row against the chosen ones
        # (a nested loop over 500 x 27 in the bench: 9 ms a claim instead of 2).
        chosen_ids = _M.c.id == any_(func.array(chosen.scalar_subquery(), type_=ARRAY(String)))
    else:
        chosen_ids = _M.c.id.in_(chosen.scalar_subquery())
    at = bindparam("claim_at", type_=_M.c.claimed_at.type)
    claim = (
        update(_M)
        .where(chosen_ids, _M.c.status == "queued")
        .values(status="sending", claimed_at=at, attempts=_M.c.attempts + 1, updated_at=at)
        .returning(*gate.CLAIMED_COLUMNS)
    )
    built = _CLAIM_STATEMENTS[key] = (claim, chosen.limit(1))
    return built


_NOW = bindparam("_now", type_=_M.c.updated_at.type)


class _Outcome:
    """One outcome written for many texts: the values all get, and those each row has."""

    def __init__(self, values: dict[str, Any], per_row: dict[str, Any]) -> None:
        self.values = values
        self.per_row = per_row  # "_column" -> the column's type
        self._built: dict[str, Any] = {}

    def statement(self, dialect: str) -> Any:
        built = self._built.get(dialect)
        if built is None:
            built = self._built[dialect] = self._build(dialect)
        return built

    def _build(self, dialect: str) -> Any:
        """Moved only while still `sending`, as outcomes.settle() moves a row.

        PostgreSQL: one UPDATE over an unnest of arrays (one round trip, whatever the count),
        returning the ids it moved. SQLite: an executemany, one row per text (in-process).
        """
        values = {**self.values, "updated_at": _NOW}
        if dialect == "postgresql":
            given = (
                func.unnest(
                    bindparam("_ids", type_=ARRAY(String)),
                    *(bindparam(name, type_=ARRAY(type_)) for name, type_ in self.per_row.items()),
                )
                .table_valued("id", *self.per_row)
                .render_derived("given")
            )
            return (
                update(_M)
                .where(_M.c.id == given.c.id, _M.c.status == "sending")
                .values(**values, **{name[1:]: given.c[name] for name in self.per_row})
                .returning(_M.c.id)
            )
        return (
            update(_M)
            .where(_M.c.id == bindparam("_id"), _M.c.status == "sending")
            .values(**values, **{name[1:]: bindparam(name) for name in self.per_row})
        )


# A send's outcome, as the provider answered it.
_MARK_SENT = _Outcome(
    {"status": "sent", "sent_at": _NOW, "error_code": None, "error_message": None},
    {"_provider_sid": _M.c.provider_sid.type, "_segments": _M.c.segments.type},
)
# A text the send-time check skipped, with its reason.
_MARK_SKIPPED = _Outcome({"status": "skipped"}, {"_error_message": _M.c.error_message.type})


def _moved(
    outcome: _Outcome, ids: list[str], per_row: dict[str, list[Any]], now: datetime
) -> set[str] | None:
    """Write one outcome for these texts; return the ids moved (None: not all, not known)."""
    dialect = db.session.get_bind().dialect.name
    stmt = outcome.statement(dialect)
    if dialect == "postgresql":
        params = {"_ids": ids, "_now": now, **per_row}
        return set(db.session.scalars(stmt, params))
    columns = list(per_row)
    rows = [
        {"_id": id_, "_now": now, **dict(zip(columns, values, strict=True))}
        for id_, *values in zip(ids, *per_row.values(), strict=True)
    ]
    return set(ids) if db.session.execute(stmt, rows).rowcount == len(ids) else None


def _settle_skipped(skipped: list[tuple[gate.Claimed, str]], now: datetime) -> None:
    """Record a batch's skipped texts (not committed), as settle() records each."""
    if not skipped:
        return
    ids = [m.id for m, _ in skipped]
    moved = _moved(_MARK_SKIPPED, ids, {"_error_message": [r for _, r in skipped]}, now)
    now_as: dict[str, str] = {}
    if moved is None:
        # Some row changed under us: read what each is now, as settle() does.
        found = db.session.execute(select(_M.c.id, _M.c.status).where(_M.c.id.in_(ids)))
        now_as = {id_: status for id_, status in found}
        moved = {id_ for id_, status in now_as.items() if status == "skipped"}
    elif len(moved) != len(ids):
        found = db.session.execute(select(_M.c.id, _M.c.status).where(_M.c.id.in_(ids)))
        now_as = {id_: status for id_, status in found}
    for message, reason in skipped:
        if message.id not in moved:
            message.status = now_as.get(message.id, message.status)
            logger.warning("dispatch: message %s changed under us; left as %s", message.id,
                           message.status)  # fmt: skip
            continue
        message.status, message.error_message, message.updated_at = "skipped", reason, now


# The run's statements, built at import for each dialect (setting up their subqueries and
# aliases costs more than the rest of a small run's Python work).
for _dialect in ("sqlite", "postgresql"):
    for _only in (False, True):
        _claim_statements(_dialect, _only)
    for _outcome in (_MARK_SENT, _MARK_SKIPPED):
        _outcome.statement(_dialect)


class _Withheld(Exception):
    """A send not tried: one handed over before it failed provider-wide."""


def _provider_send(
    provider: SmsProvider,
    settings: Any,
    kwargs: dict[str, Any],
    bucket: TokenBucket,
    slot: float | None,
    halted: threading.Event | None = None,
) -> SendResult:
    """Send one text at its slot (on a sender thread); a crash test may stop us right after."""
    if slot is not None:
        bucket.wait_until(slot)
    if halted is not None and halted.is_set():
        raise _Withheld
    try:
        result = provider.send(**kwargs)
    except DeliveryError as error:
        if halted is not None and policy.provider_wide(error):
            halted.set()
        raise
    _crash_point(settings)
    return result


def _failed(
    message: gate.Claimed,
    error: DeliveryError,
    now: datetime,
    rng: random.Random,
    recipient: gate.Recipient,
) -> str:
    """Record a failed send (not committed): give up on a permanent error, reconcile or retry."""
    detail = str(error)[:500]
    if error.permanent:
        give_up(message, now, error.code, detail, recipient)
        if error.code in policy.OPT_OUT_CODES:
            reason, kind = policy.OPT_OUT_CODES[error.code]
            opt_out_number(message.to_number, reason=reason, keyword=None, now=now,
                           alert_kind=kind, source="provider")  # fmt: skip
        return "failed"
    wait = policy.backoff(message.attempts, rng, error.retry_after)
    if error.maybe_sent:
        # The provider may have the text: it stays `sending` until reconcile_abandoned
        # has asked the provider, after the lease, whether it exists.
        settle(message, now, status="sending", send_after=now + wait, error_code=error.code,
                error_message=f"maybe sent: {detail}"[:500])  # fmt: skip
    elif policy.should_retry(error, message.attempts):
        settle(message, now, status="queued", send_after=now + wait, claimed_at=None,
                error_code=error.code, error_message=detail)  # fmt: skip
    else:
        give_up(message, now, error.code, detail, recipient)
    logger.warning("dispatch: message %s to %s failed (attempt %d): %s", message.id,
                   mask(message.to_number), message.attempts, detail)  # fmt: skip
    return "provider_down" if policy.provider_wide(error) else "retry"


def _crash_point(settings: Any) -> None:
    """Die right after a send when a crash test asks for it (STEADFAST_ENV=test only)."""
    global _sends_this_process
    limit = os.environ.get(CRASH_AFTER_SEND_ENV)
    if not limit or getattr(settings, "STEADFAST_ENV", "") != "test":
        return
    _sends_this_process += 1
    if _sends_this_process >= int(limit):
        logging.shutdown()
        os._exit(9)
