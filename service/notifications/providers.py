"""SMS providers behind one small interface: Twilio, a console stand-in and a scriptable fake."""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import random
import re
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from service.notifications import gsm

logger = logging.getLogger(__name__)

# Twilio error codes that no retry will fix: the recipient opted out (21610), the number
# is invalid (21211), not a mobile (21614), in a region the account may not text
# (21408), or unreachable from our sender (21612).
PERMANENT_CODES = frozenset({21610, 21211, 21614, 21408, 21612})
# Rate limited (20429) and the account's outbound queue is full (21611): wait and retry.
TRANSIENT_CODES = frozenset({20429, 21611})
# Safe, number-free descriptions; Twilio's own messages quote the recipient's number.
_CODE_LABELS = {
    21610: "recipient has opted out",
    21211: "invalid 'To' number",
    21614: "'To' number is not a mobile number",
    21408: "sending to this region is not enabled",
    21612: "cannot route to this number",
    21611: "outbound queue is full",
    20429: "too many requests",
    20003: "authentication failed",
    21602: "message body is required",
    21604: "'To' number is required",
    21617: "message body is too long",
}
MAX_VALIDITY_SECONDS = 36000  # Twilio's ceiling for ValidityPeriod
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_DEDUPE_SIZE = 10_000


class DeliveryError(Exception):
    """A send or lookup that failed; `permanent` says whether retrying can help."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: int | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.status = status
        self.retry_after = retry_after
        # True when the provider may have accepted the message before the failure (a read
        # timeout, a dropped connection, a 5xx): reconcile with lookup() before resending.
        self.maybe_sent = maybe_sent

    def __repr__(self) -> str:
        return (
            f"DeliveryError({str(self)!r}, permanent={self.permanent}, code={self.code}, "
            f"status={self.status}, retry_after={self.retry_after}, "
            f"maybe_sent={self.maybe_sent})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments defeat Exception's default pickling (worker queues).
        return (
            _rebuild_delivery_error,
            (str(self), self.permanent, self.code, self.status, self.retry_after, self.maybe_sent),
        )


def _rebuild_delivery_error(
    message: str,
    permanent: bool,
    code: int | None,
    status: int | None,
    retry_after: float | None,
    maybe_sent: bool,
) -> DeliveryError:
    """Recreate a pickled DeliveryError."""
    return DeliveryError(
        message,
        permanent=permanent,
        code=code,
        status=status,
        retry_after=retry_after,
        maybe_sent=maybe_sent,
    )


@dataclass(frozen=True)
class SendResult:
    """What the provider said when it accepted a message."""

    sid: str
    status: str
    segments: int


@dataclass(frozen=True)
class SentRecord:
    """A message the provider says it sent to a number."""

    sid: str
    to: str
    body: str
    status: str
    date_created: datetime


@runtime_checkable
class SmsProvider(Protocol):
    """Sends texts and reports what it has sent."""

    name: str

    def send(
        self,
        *,
        to: str,
        body: str,
        sender: str | None,
        status_callback: str | None,
        validity_seconds: int | None,
        idempotency_key: str,
    ) -> SendResult:
        """Send body to the E.164 number `to`; raise DeliveryError on failure."""
        ...

    def lookup(self, *, to: str, since: datetime, until: datetime) -> list[SentRecord]:
        """Return what the provider has sent to `to` between since and until."""
        ...


def mask_number(number: str | None) -> str:
    """Return a phone number reduced to its last four digits, for logs."""
    digits = re.sub(r"\D", "", number or "")
    return f"***{digits[-4:]}" if digits else "***"


def is_permanent(code: int | None, status: int | None) -> bool:
    """Classify a provider error: True when retrying the same request cannot succeed."""
    if code in PERMANENT_CODES:
        return True
    if code in TRANSIENT_CODES or status is None:
        return False
    if status == 429 or status >= 500:
        return False
    # Bad credentials or a suspended account is a problem with us, not the message:
    # keep the message and retry once an operator has fixed the account.
    if status in (401, 403):
        return False
    return 400 <= status < 500


def describe(code: int | None, status: int | None) -> str:
    """Return a number-free description of a provider error."""
    label = _CODE_LABELS.get(code or 0) or (f"HTTP {status}" if status else "error")
    parts = [label]
    if code:
        parts.append(f"code {code}")
    if status:
        parts.append(f"HTTP {status}")
    return ", ".join(dict.fromkeys(parts))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Return the seconds a Retry-After header asks for (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _utc(value: datetime) -> datetime:
    """Return value as an aware UTC datetime (naive values are taken to be UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_message(to: str, body: str) -> None:
    """Reject what Twilio would reject, so the stand-in providers behave like it."""
    if not to:
        raise DeliveryError(describe(21604, 400), permanent=True, code=21604, status=400)
    if not _E164.match(to):
        raise DeliveryError(describe(21211, 400), permanent=True, code=21211, status=400)
    if not body:
        raise DeliveryError(describe(21602, 400), permanent=True, code=21602, status=400)
    if len(body) > 1600:
        raise DeliveryError(describe(21617, 400), permanent=True, code=21617, status=400)


def _check_validity(validity_seconds: int | None) -> int | None:
    """Return the validity period to ask for, capped at Twilio's maximum."""
    if validity_seconds is None:
        return None
    if validity_seconds < 1:
        raise ValueError("validity_seconds must be at least 1")
    return min(int(validity_seconds), MAX_VALIDITY_SECONDS)


class _Dedupe:
    """Remember recent successful sends by idempotency key, so a repeat is not resent."""

    def __init__(self, size: int = _DEDUPE_SIZE) -> None:
        self._size = size
        self._results: OrderedDict[str, SendResult] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> SendResult | None:
        """Return the result remembered for key, if any."""
        with self._lock:
            result = self._results.get(key)
            if result is not None:
                self._results.move_to_end(key)
            return result

    def put(self, key: str, result: SendResult) -> None:
        """Remember the result for key, forgetting the oldest beyond the size."""
        with self._lock:
            self._results[key] = result
            self._results.move_to_end(key)
            while len(self._results) > self._size:
                self._results.popitem(last=False)


def _now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


class ConsoleProvider:
    """Development stand-in: logs a masked line per text and remembers what it 'sent'."""

    name = "console"

    def __init__(self, *, clock: Callable[[], datetime] = _now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sent: list[SentRecord] = []
        self._dedupe = _Dedupe()

    @property
    def sent(self) -> list[SentRecord]:
        """Return a copy of everything sent by this process, oldest first."""
        with self._lock:
            return list(self._sent)

    def send(
        self,
        *,
        to: str,
        body: str,
        sender: str | None = None,
        status_callback: str | None = None,
        validity_seconds: int | None = None,
        idempotency_key: str,
    ) -> SendResult:
        """Log the text (number masked, body never) and return a fake CO sid."""
        previous = self._dedupe.get(idempotency_key)
        if previous is not None:
            return previous
        _check_message(to, body)
        _check_validity(validity_seconds)
        result = SendResult(sid="CO" + uuid.uuid4().hex, status="sent", segments=gsm.segments(body))
        with self._lock:
            self._sent.append(SentRecord(result.sid, to, body, result.status, _utc(self._clock())))
        self._dedupe.put(idempotency_key, result)
        logger.info(
            "console sms %s to %s: %d chars, %d segment(s)",
            result.sid,
            mask_number(to),
            len(body),
            result.segments,
        )
        return result

    def lookup(self, *, to: str, since: datetime, until: datetime) -> list[SentRecord]:
        """Return the texts this process sent to `to` between since and until."""
        lo, hi = _utc(since), _utc(until)
        with self._lock:
            return [r for r in self._sent if r.to == to and lo <= r.date_created <= hi]


@dataclass
class FakeMessage:
    """One text the FakeProvider accepted, with everything it was asked to do."""

    sid: str
    to: str
    body: str
    sender: str | None
    status_callback: str | None
    validity_seconds: int | None
    idempotency_key: str
    segments: int
    status: str
    date_created: datetime


@dataclass
class _Scripted:
    error: DeliveryError
    deliver: bool = False  # record the message anyway: the response was "lost"


@dataclass
class FakeProvider:
    """Test double: records every send, fails on demand or at a seeded random rate."""

    failure_rate: float = 0.0
    seed: int = 0
    clock: Callable[[], datetime] = field(default=_now, repr=False)
    name: str = "fake"
    # Kept out of repr so that printing the provider never shows numbers or bodies.
    sent: list[FakeMessage] = field(default_factory=list, repr=False)
    attempts: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._script: deque[_Scripted] = deque()
        self._lock = threading.Lock()
        self._dedupe = _Dedupe()

    def fail_next(
        self,
        code: int | None = None,
        status: int | None = None,
        permanent: bool | None = None,
        *,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` sends fail with this Twilio code/HTTP status."""
        if status is None:
            status = 429 if code == 20429 else 400 if code else 500
        if permanent is None:
            permanent = is_permanent(code, status)
        for _ in range(times):
            error = DeliveryError(
                describe(code, status),
                permanent=permanent,
                code=code,
                status=status,
                retry_after=retry_after,
            )
            self._script.append(_Scripted(error))

    def lose_response_next(self, times: int = 1) -> None:
        """Accept the next sends but fail as if the response timed out (maybe_sent)."""
        for _ in range(times):
            error = DeliveryError(
                "timed out waiting for the provider", permanent=False, maybe_sent=True
            )
            self._script.append(_Scripted(error, deliver=True))

    def set_status(self, sid: str, status: str) -> None:
        """Change the status lookup() reports for a sent message."""
        with self._lock:
            for message in self.sent:
                if message.sid == sid:
                    message.status = status
                    return
        raise KeyError(sid)

    def send(
        self,
        *,
        to: str,
        body: str,
        sender: str | None = None,
        status_callback: str | None = None,
        validity_seconds: int | None = None,
        idempotency_key: str,
    ) -> SendResult:
        """Record the text and return a fake sid, or raise the scripted DeliveryError."""
        with self._lock:
            self.attempts.append(
                {
                    "to": to,
                    "body": body,
                    "sender": sender,
                    "status_callback": status_callback,
                    "validity_seconds": validity_seconds,
                    "idempotency_key": idempotency_key,
                }
            )
            previous = self._dedupe.get(idempotency_key)
            if previous is not None:
                return previous
            scripted = self._script.popleft() if self._script else None
            if (
                scripted is None
                and self.failure_rate > 0
                and self._random.random() < self.failure_rate
            ):
                scripted = _Scripted(
                    DeliveryError(describe(None, 503), permanent=False, status=503)
                )
            if scripted is not None and not scripted.deliver:
                raise scripted.error
            _check_message(to, body)
            validity = _check_validity(validity_seconds)
            message = FakeMessage(
                sid="SM" + uuid.UUID(int=self._random.getrandbits(128)).hex,
                to=to,
                body=body,
                sender=sender,
                status_callback=status_callback,
                validity_seconds=validity,
                idempotency_key=idempotency_key,
                segments=gsm.segments(body),
                status="queued",
                date_created=_utc(self.clock()),
            )
            self.sent.append(message)
            if scripted is not None:
                raise scripted.error
            result = SendResult(message.sid, message.status, message.segments)
            self._dedupe.put(idempotency_key, result)
        logger.debug("fake sms %s to %s", result.sid, mask_number(to))
        return result

    def lookup(self, *, to: str, since: datetime, until: datetime) -> list[SentRecord]:
        """Return the recorded texts to `to` created between since and until."""
        lo, hi = _utc(since), _utc(until)
        with self._lock:
            return [
                SentRecord(m.sid, m.to, m.body, m.status, m.date_created)
                for m in self.sent
                if m.to == to and lo <= m.date_created <= hi
            ]


# Phone numbers as they appear in a URL (To=%2B15551234567) or as bare long digit runs.
_NUMBER_RE = re.compile(r"(?:%2B|\+)\d{6,15}|(?<![\w.%])\d{10,15}(?![\w.])")


class _RedactNumbers(logging.Filter):
    """Mask phone numbers in urllib3's debug lines, which quote the request URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = _NUMBER_RE.sub(lambda m: mask_number(m.group(0)), str(record.msg))
        return True


_REDACT = _RedactNumbers()


# Logger filters do not apply to child loggers' records, so each urllib3 logger that
# can quote a request URL gets its own.
_TRANSPORT_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection")


def _redact_transport_logs() -> None:
    """Install the number filter on urllib3's loggers (once)."""
    for name in _TRANSPORT_LOGGERS:
        transport = logging.getLogger(name)
        if _REDACT not in transport.filters:
            transport.addFilter(_REDACT)


class _EnvironmentSettings:
    """requests' merge_environment_settings, the environment read once per scheme and host.

    The twilio library asks for every request; requests then scans the whole process
    environment for proxy variables each time (about 1 ms a request in the profile). The
    variables (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, ...) are read at the first
    request to a host and kept for the client's life.
    """

    def __init__(self, session: requests.Session) -> None:
        self._merge = session.merge_environment_settings
        self._lock = threading.Lock()
        self._cache: dict[tuple[Any, ...], dict[str, Any]] = {}

    def __call__(
        self, url: str, proxies: Mapping[str, str] | None, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, tuple(sorted((proxies or {}).items())), stream,
               verify, cert)  # fmt: skip
        with self._lock:
            settings = self._cache.get(key)
        if settings is None:
            settings = self._merge(url, proxies, stream, verify, cert)
            with self._lock:
                self._cache[key] = settings
        return {k: dict(v) if isinstance(v, dict) else v for k, v in settings.items()}


# Connections kept per provider host: as many as a dispatch run's sender threads at most
# (dispatch._MAX_PACED_SENDERS is this).
SEND_CONNECTIONS = 32


class RebasingHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client, optionally pointed at another base URL, logging nothing private."""

    def __init__(self, base_url: str | None = None, timeout: float | None = 10, **kwargs: Any):
        super().__init__(timeout=timeout, **kwargs)
        self.base_url = base_url.rstrip("/") if base_url else None
        if self.base_url:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("base_url must look like http://host:port")
        self._local = threading.local()
        if self.session is not None:
            # twilio mounts https:// with min(32, cores + 4) pooled connections (6 on two
            # cores) and leaves http:// at requests' 10, while a paced dispatch run sends on
            # up to SEND_CONNECTIONS threads at once: every send beyond the pool's size
            # opened a new connection (a TLS handshake to Twilio) and threw it away after.
            for scheme in ("https://", "http://"):
                mounted = self.session.adapters.get(scheme)
                retries = getattr(mounted, "max_retries", 0)
                adapter = HTTPAdapter(pool_maxsize=SEND_CONNECTIONS, max_retries=retries)
                self.session.mount(scheme, adapter)
        # urllib3 logs every request line at DEBUG, query string (and so the number of
        # a lookup) included.
        _redact_transport_logs()
        if self.session is not None and self.session.trust_env:
            self.session.merge_environment_settings = _EnvironmentSettings(self.session)

    def rebase(self, url: str) -> str:
        """Return url with its scheme and host replaced by base_url's."""
        if not self.base_url:
            return url
        base = urlsplit(self.base_url)
        parts = urlsplit(url)
        return urlunsplit(
            (base.scheme, base.netloc, base.path + parts.path, parts.query, parts.fragment)
        )

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        """Send the request the twilio library built, to the rebased URL."""
        self._local.headers = None
        response = super().request(
            method,
            self.rebase(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        # TwilioRestException drops the response headers; keep them (per thread) so
        # the provider can honour Retry-After.
        self._local.headers = response.headers
        return response

    def last_response_headers(self) -> Mapping[str, str] | None:
        """Return the headers of this thread's last response."""
        return getattr(self._local, "headers", None)

    def log_request(self, kwargs: dict[str, Any]) -> None:
        """Log method and path only: the query string can hold the recipient's number."""
        logger.debug("twilio request %s %s", kwargs["method"], urlsplit(kwargs["url"]).path)

    def log_response(self, status_code: int, response: Any) -> None:
        """Log the status only: the response body holds the text and the number."""
        logger.debug("twilio response %s", status_code)

    def close(self) -> None:
        """Close pooled connections."""
        if self.session is not None:
            self.session.close()


def _never_connected(exc: requests.exceptions.RequestException) -> bool:
    """Return True when the request cannot have reached the provider."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.InvalidURL):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)
        return isinstance(
            reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
        )
    return False


def _transport_error(exc: requests.exceptions.RequestException) -> DeliveryError:
    """Classify a network failure: always transient, possibly already sent."""
    if isinstance(exc, requests.exceptions.Timeout):
        what = "timed out talking to Twilio"
    else:
        what = "could not reach Twilio"
    # The exception text names the URL (with the number, for lookups): keep it out.
    return DeliveryError(
        f"{what} ({type(exc).__name__})", permanent=False, maybe_sent=not _never_connected(exc)
    )


class TwilioProvider:
    """Sends through the real twilio library; Client is injected, from_settings builds one."""

    name = "twilio"

    def __init__(
        self,
        client: Client,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        clock_skew: timedelta = timedelta(minutes=2),
        lookup_limit: int = 200,
        lookup_newest: int = 20,
        lookup_page_size: int = 100,
    ) -> None:
        if bool(from_number) == bool(messaging_service_sid):
            raise ValueError("give exactly one of from_number and messaging_service_sid")
        self.client = client
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        # Twilio stamps messages with its clock, the caller's window uses ours.
        self.clock_skew = clock_skew
        self.lookup_limit = lookup_limit
        self.lookup_newest = lookup_newest
        self.lookup_page_size = lookup_page_size
        self._dedupe = _Dedupe()
        # The Messages resource, built (and its modules imported, ~80 ms) once here rather
        # than at the first send, while a claimed batch waits for it.
        self._messages = client.messages

    @classmethod
    def from_settings(
        cls,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        base_url: str | None = None,
        timeout: float = 10,
    ) -> TwilioProvider:
        """Build a provider on twilio.rest.Client; base_url redirects requests (tests)."""
        if not account_sid:
            raise ValueError("TWILIO_ACCOUNT_SID is required")
        if not auth_token:
            raise ValueError("TWILIO_AUTH_TOKEN is required")
        if bool(from_number) == bool(messaging_service_sid):
            raise ValueError(
                "give exactly one of TWILIO_FROM_NUMBER and TWILIO_MESSAGING_SERVICE_SID"
            )
        http_client = RebasingHttpClient(base_url=base_url, timeout=timeout)
        client = Client(account_sid, auth_token, http_client=http_client)
        return cls(client, from_number=from_number, messaging_service_sid=messaging_service_sid)

    def close(self) -> None:
        """Release the HTTP connections."""
        close = getattr(self.client.http_client, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> TwilioProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _retry_after(self) -> float | None:
        headers_of = getattr(self.client.http_client, "last_response_headers", None)
        headers = headers_of() if callable(headers_of) else None
        return parse_retry_after(headers.get("Retry-After")) if headers else None

    def _api_error(self, exc: TwilioRestException | TwilioServiceException) -> DeliveryError:
        """Classify an error response; never copy Twilio's message (it quotes the number)."""
        status = int(exc.status) if exc.status else None
        code = int(exc.code) if exc.code else None
        if code is not None and code < 10000:  # the library puts the HTTP status there
            code = None
        permanent = is_permanent(code, status)
        transient_5xx = status is not None and status >= 500
        return DeliveryError(
            f"Twilio refused: {describe(code, status)}",
            permanent=permanent,
            code=code,
            status=status,
            retry_after=None if permanent else self._retry_after(),
            # A 5xx after the POST reached Twilio can hide an accepted message, except a
            # 503, which is returned before any work is done.
            maybe_sent=transient_5xx and status != 503,
        )

    def _page_error(self, exc: TwilioException) -> DeliveryError:
        """Classify a failed list page: the library raises it with the bare response."""
        response = exc.args[1] if len(exc.args) > 1 else None
        status = getattr(response, "status_code", None)
        code = None
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            code = int(json.loads(getattr(response, "text", "") or "{}").get("code") or 0) or None
        return DeliveryError(
            f"Twilio refused: {describe(code, status)}",
            permanent=is_permanent(code, status),
            code=code,
            status=status,
            retry_after=self._retry_after(),
        )

    def send(
        self,
        *,
        to: str,
        body: str,
        sender: str | None = None,
        status_callback: str | None = None,
        validity_seconds: int | None = None,
        idempotency_key: str,
    ) -> SendResult:
        """Create the message through Twilio's Messages API; raise DeliveryError on failure."""
        previous = self._dedupe.get(idempotency_key)
        if previous is not None:
            logger.info("twilio sms %s: already sent for this key, not resending", previous.sid)
            return previous
        kwargs: dict[str, Any] = {"to": to, "body": body}
        origin = sender or self.messaging_service_sid or self.from_number
        if origin and origin.startswith("MG"):
            kwargs["messaging_service_sid"] = origin
        else:
            kwargs["from_"] = origin
        if status_callback:
            kwargs["status_callback"] = status_callback
        validity = _check_validity(validity_seconds)
        if validity is not None:
            kwargs["validity_period"] = validity
        try:
            message = self._messages.create(**kwargs)
        except (TwilioRestException, TwilioServiceException) as exc:
            error = self._api_error(exc)
        except requests.exceptions.RequestException as exc:
            error = _transport_error(exc)
        except TwilioException as exc:  # e.g. a reply that was not JSON
            error = DeliveryError(
                f"unreadable Twilio reply ({type(exc).__name__})", permanent=False, maybe_sent=True
            )
        else:
            segments = int(message.num_segments or 0) or gsm.segments(body)
            result = SendResult(sid=message.sid, status=str(message.status), segments=segments)
            self._dedupe.put(idempotency_key, result)
            logger.info(
                "twilio sms %s to %s: %s, %d segment(s)",
                result.sid,
                mask_number(to),
                result.status,
                result.segments,
            )
            return result
        logger.warning("twilio sms to %s failed: %s", mask_number(to), error)
        raise error

    def lookup(self, *, to: str, since: datetime, until: datetime) -> list[SentRecord]:
        """Return what Twilio sent to `to` created between since and until (± clock skew)."""
        lo, hi = _utc(since) - self.clock_skew, _utc(until) + self.clock_skew
        try:
            # DateSent> narrows the scan on Twilio's side, but a text still queued at Twilio
            # has no DateSent and is invisible to it: resending that one would text the
            # person twice. So the newest texts to the number are read as well, unfiltered,
            # and the window is checked on date_created below.
            page_size = min(self.lookup_limit, self.lookup_page_size)
            sent = self._messages.list(
                to=to, date_sent_after=lo, limit=self.lookup_limit, page_size=page_size
            )
            newest = self._messages.list(
                to=to, limit=self.lookup_newest, page_size=min(page_size, self.lookup_newest)
            )
            messages = list({m.sid: m for m in [*sent, *newest]}.values())
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._api_error(exc) from None
        except requests.exceptions.RequestException as exc:
            raise _transport_error(exc) from None
        except TwilioException as exc:
            raise self._page_error(exc) from None
        records = [
            SentRecord(
                sid=m.sid,
                to=m.to,
                body=m.body or "",
                status=str(m.status),
                date_created=_utc(m.date_created),
            )
            for m in messages
            if isinstance(m.date_created, datetime) and lo <= _utc(m.date_created) <= hi
        ]
        records.sort(key=lambda r: r.date_created)
        return records


def build_provider(backend: str, settings: Mapping[str, Any]) -> SmsProvider:
    """Return the provider named by backend ("console", "fake" or "twilio") from settings."""
    kind = (backend or "").strip().lower()
    if kind == "console":
        return ConsoleProvider()
    if kind == "fake":
        return FakeProvider()
    if kind == "twilio":
        for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
            if not settings.get(key):
                raise ValueError(f"SMS backend 'twilio' needs the {key} setting")
        from_number = settings.get("TWILIO_FROM_NUMBER") or None
        service_sid = settings.get("TWILIO_MESSAGING_SERVICE_SID") or None
        if not from_number and not service_sid:
            raise ValueError(
                "SMS backend 'twilio' needs the TWILIO_FROM_NUMBER or "
                "TWILIO_MESSAGING_SERVICE_SID setting"
            )
        if from_number and service_sid:
            raise ValueError("set only one of TWILIO_FROM_NUMBER and TWILIO_MESSAGING_SERVICE_SID")
        return TwilioProvider.from_settings(
            settings["TWILIO_ACCOUNT_SID"],
            settings["TWILIO_AUTH_TOKEN"],
            from_number=from_number,
            messaging_service_sid=service_sid,
            base_url=settings.get("TWILIO_API_BASE_URL") or None,
            timeout=float(settings.get("TWILIO_TIMEOUT") or 10),
        )
    raise ValueError(f"unknown SMS backend {backend!r}: use console, fake or twilio")
