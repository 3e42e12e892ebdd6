"""A fake Twilio Messages API on 127.0.0.1, plus signed status callbacks and inbound texts."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from twilio.request_validator import RequestValidator

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "f" * 32
DEFAULT_AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
_MESSAGES_RE = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages\.json$")
_MESSAGE_RE = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json$"
)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    21211: "The 'To' number {to} is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' "
    "number: {to}.",
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone "
    "number via SMS.",
    21614: "'To' number {to} is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}


class WebhookResponse(NamedTuple):
    """What our app answered to a webhook the fake fired."""

    status: int
    body: str


@dataclass
class RecordedRequest:
    """One request the fake server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, str]
    form_lists: dict[str, list[str]]
    username: str | None
    password: str | None
    headers: dict[str, str]
    # False when the client hung up before sending the whole body (a process killed mid-send):
    # Twilio acts on no such request, and neither does the fake.
    complete: bool = True


@dataclass
class _Failure:
    status: int
    code: int | None = None
    retry_after: str | None = None
    delay: float = 0.0  # seconds to stall before answering normally (timeouts)


@dataclass
class FakeTwilio:
    """The fake server's state; start() serves it on 127.0.0.1 at a free port."""

    account_sid: str = DEFAULT_ACCOUNT_SID
    auth_token: str = DEFAULT_AUTH_TOKEN
    failure_rate: float = 0.0
    seed: int = 0
    failure_status: int = 500
    requests: list[RecordedRequest] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    page_size_default: int = 50
    # Twilio's clock. Tests that move the app's clock pass theirs, so messages are dated in
    # the same (simulated) time the app reconciles against; wall time otherwise.
    clock: Callable[[], datetime] | None = None
    # Keep created texts `queued` (no DateSent), as Twilio does while its queue is backed up.
    hold_queued: bool = False

    def now(self) -> datetime:
        """Return the server's idea of the current time (the test clock, when given)."""
        return self.clock() if self.clock is not None else datetime.now(UTC)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: deque[_Failure] = deque()
        self._random = random.Random(self.seed)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """Return http://127.0.0.1:PORT for the running server."""
        if self._server is None:
            raise RuntimeError("the fake Twilio server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeTwilio:
        """Serve on 127.0.0.1 at a free port in a daemon thread."""
        if self._server is not None:
            return self
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-twilio",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is None:
            return
        self._stopping.set()  # wake handlers stalled by timeout_next
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- scripting ---------------------------------------------------------------
    def fail_next(
        self,
        n: int = 1,
        *,
        code: int | None = None,
        status: int | None = None,
        retry_after: float | str | None = None,
    ) -> None:
        """Answer the next n API requests with an error (Twilio's JSON error body)."""
        if status is None:
            status = 429 if code == 20429 else 400 if code else 500
        if code is None:
            code = {429: 20429, 401: 20003, 404: 20404}.get(
                status, 20500 if status >= 500 else None
            )
        with self._lock:
            for _ in range(n):
                self._failures.append(
                    _Failure(status, code, None if retry_after is None else str(retry_after))
                )

    def timeout_next(self, n: int = 1, seconds: float = 1.0) -> None:
        """Stall the next n API requests for `seconds` before answering them normally."""
        with self._lock:
            for _ in range(n):
                self._failures.append(_Failure(status=0, delay=seconds))

    def reset(self) -> None:
        """Forget recorded requests, messages and pending failures."""
        with self._lock:
            self.requests.clear()
            self.messages.clear()
            self._failures.clear()

    def set_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        """Change a stored message's status, as Twilio does while delivering it."""
        with self._lock:
            message = self.messages[sid]
            message["status"] = status
            message["error_code"] = error_code
            message["date_updated"] = _rfc2822(self.now())

    def posts(self) -> list[RecordedRequest]:
        """Return the recorded POSTs that tried to create a message (whole requests only)."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.complete]

    def torn_posts(self) -> list[RecordedRequest]:
        """Return the POSTs whose client hung up before the body was all sent."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and not r.complete]

    def _next_failure(self) -> _Failure | None:
        with self._lock:
            if self._failures:
                return self._failures.popleft()
            if self.failure_rate > 0 and self._random.random() < self.failure_rate:
                code = 20429 if self.failure_status == 429 else 20500
                return _Failure(self.failure_status, code)
        return None

    # ---- webhooks ----------------------------------------------------------------
    def sign(self, url: str, params: Mapping[str, str], auth_token: str | None = None) -> str:
        """Return the X-Twilio-Signature Twilio would send for this URL and form."""
        return RequestValidator(auth_token or self.auth_token).compute_signature(url, dict(params))

    def _post_webhook(
        self, url: str, params: dict[str, str], auth_token: str | None, timeout: float
    ) -> WebhookResponse:
        signature = self.sign(url, params, auth_token)
        response = requests.post(
            url,
            data=params,
            headers={
                "X-Twilio-Signature": signature,
                "User-Agent": "TwilioProxy/1.1",
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            },
            timeout=timeout,
            allow_redirects=False,
        )
        with response:
            return WebhookResponse(response.status_code, response.text)

    def send_status_callback(
        self,
        url: str,
        sid: str,
        status: str,
        error_code: int | None = None,
        auth_token: str | None = None,
        *,
        to: str | None = None,
        from_: str | None = None,
        timeout: float = 10,
    ) -> WebhookResponse:
        """POST a signed message status callback to url, the way Twilio does."""
        with self._lock:
            stored = self.messages.get(sid)
            if stored is not None:
                stored["status"] = status
                stored["error_code"] = error_code
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": to or (stored or {}).get("to") or "",
            "From": from_ or (stored or {}).get("from") or "",
        }
        if stored is not None and stored.get("messaging_service_sid"):
            params["MessagingServiceSid"] = stored["messaging_service_sid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return self._post_webhook(url, params, auth_token, timeout)

    def send_inbound(
        self,
        url: str,
        from_: str,
        to: str,
        body: str,
        auth_token: str | None = None,
        *,
        timeout: float = 10,
    ) -> WebhookResponse:
        """POST a signed inbound SMS webhook to url, the way Twilio does."""
        sid = "SM" + uuid.uuid4().hex
        params = {
            "ToCountry": "US",
            "ToState": "",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": "US",
            "To": to,
            "ToZip": "",
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "ApiVersion": API_VERSION,
        }
        return self._post_webhook(url, params, auth_token, timeout)

    # ---- API behaviour (called from handler threads) -------------------------------
    def _message_json(self, message: dict[str, Any]) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{message['sid']}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": message["body"],
            "date_created": message["date_created"],
            "date_sent": message["date_sent"],
            "date_updated": message["date_updated"],
            "direction": "outbound-api",
            "error_code": message["error_code"],
            "error_message": None,
            "from": message["from"],
            "messaging_service_sid": message["messaging_service_sid"],
            "num_media": "0",
            "num_segments": str(message["num_segments"]),
            "price": None,
            "price_unit": "USD",
            "sid": message["sid"],
            "status": message["status"],
            "subresource_uris": {
                "media": uri.replace(".json", "/Media.json"),
                "feedback": uri.replace(".json", "/Feedback.json"),
            },
            "to": message["to"],
            "uri": uri,
        }

    def _create(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        to = form.get("To", "")
        body = form.get("Body", "")
        sender = form.get("From")
        service = form.get("MessagingServiceSid")
        if not to:
            return _error(400, 21604)
        if not sender and not service:
            return _error(400, 21603)
        if not body:
            return _error(400, 21602)
        if not _E164.match(to):
            return _error(400, 21211, to=to)
        if len(body) > 1600:
            return _error(400, 21617)
        now = self.now()
        stamp = _rfc2822(now)
        message = {
            "sid": "SM" + uuid.UUID(int=self._random.getrandbits(128)).hex,
            "to": to,
            "from": sender,  # Twilio fills this in later for a messaging service
            "messaging_service_sid": service,
            "body": body,
            "status": "accepted" if service else "queued",
            "num_segments": _segments(body),
            "date_created": stamp,
            "date_updated": stamp,
            "date_sent": None,
            "error_code": None,
            "created": now,
            "form": dict(form),
        }
        with self._lock:
            self.messages[message["sid"]] = message
        answer = self._message_json(message)
        # The fake "sends" at once (unless holding): later reads see it sent, with a DateSent.
        if not self.hold_queued:
            with self._lock:
                message["status"] = "sent"
                message["date_sent"] = stamp
        return 201, answer

    def _list(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        to, sender = one("To"), one("From")
        filters = [
            (one("DateSent"), "eq"),
            (one("DateSent>"), "ge"),
            (one("DateSent<"), "le"),
        ]
        page_size = max(1, min(1000, int(one("PageSize") or self.page_size_default)))
        page = max(0, int(one("Page") or 0))
        with self._lock:
            rows = list(self.messages.values())
        selected = []
        for message in rows:
            if to and message["to"] != to:
                continue
            if sender and message["from"] != sender:
                continue
            sent = message["created"] if message["date_sent"] else None
            if any(value and not _date_matches(sent, value, op) for value, op in filters):
                continue
            selected.append(message)
        selected.sort(key=lambda m: m["created"], reverse=True)  # Twilio: newest first
        chunk = selected[page * page_size : (page + 1) * page_size]
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        params = {k: v[0] for k, v in query.items() if k not in ("Page", "PageToken")}

        def page_uri(number: int) -> str:
            extra = {"Page": str(number), "PageToken": f"PA{number}"} if number else {}
            return f"{base}?{urlencode({**params, 'PageSize': str(page_size), **extra})}"

        has_next = (page + 1) * page_size < len(selected)
        return 200, {
            "messages": [self._message_json(m) for m in chunk],
            "end": page * page_size + max(len(chunk) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": page * page_size,
            "uri": page_uri(page),
        }

    def _fetch(self, sid: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            message = self.messages.get(sid)
        if message is None:
            return _error(404, 20404)
        return 200, self._message_json(message)


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=False).replace("-0000", "+0000")


# Twilio's own segment arithmetic, written out independently of the code under test.
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = set("\f^{}\\[~]|€")


def _segments(body: str) -> int:
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in body):
        units = [2 if ch in _GSM_EXTENSION else 1 for ch in body]
        single, multi = 160, 153
    else:
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
        single, multi = 70, 67
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for size in units:
        if used + size > multi:
            parts, used = parts + 1, 0
        used += size
    return parts


def _date_matches(sent: datetime | None, value: str, op: str) -> bool:
    """Apply one DateSent filter (a date or an ISO datetime) the way Twilio does."""
    if sent is None:
        return False  # not sent yet: invisible to DateSent filters
    value = value.strip()
    if len(value) == 10:
        day = date.fromisoformat(value)
        left: date | datetime = sent.date()
        right: date | datetime = day
    else:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        left, right = sent, moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if op == "eq":
        return left == right
    if op == "ge":
        return left >= right
    return left <= right


def _error(status: int, code: int | None, to: str = "") -> tuple[int, dict[str, Any]]:
    # Like Twilio's, these messages quote the recipient's number: the provider must not
    # pass them on to logs or exception text.
    message = _MESSAGES.get(code or 0, "Error").format(to=to) if code else "Error"
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}" if code else None,
        "status": status,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # socketserver's default backlog of 5 refuses a dispatch run's senders connecting at once.
    request_queue_size = 64

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout_next) leaves a broken pipe; that is expected.
        logger.debug("fake twilio: client went away", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeTwilio
    protocol_version = "HTTP/1.1"
    server_version = "FakeTwilio/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines can carry numbers in the query string; stay quiet.
        return

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _credentials(self) -> tuple[str | None, str | None]:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None, None
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        user, _, password = decoded.partition(":")
        return user, password

    def _handle(self, method: str) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        complete = len(body) == length
        raw = body.decode(errors="replace")
        form_lists = parse_qs(raw, keep_blank_values=True) if method == "POST" else {}
        user, password = self._credentials()
        record = RecordedRequest(
            method=method,
            path=parts.path,
            query=query,
            form={k: v[0] for k, v in form_lists.items()},
            form_lists=form_lists,
            username=user,
            password=password,
            headers=dict(self.headers.items()),
            complete=complete,
        )
        with fake._lock:
            fake.requests.append(record)
        if not complete:
            return  # the client is gone: nothing is created and there is no one to answer

        created = _MESSAGES_RE.match(parts.path)
        fetched = _MESSAGE_RE.match(parts.path)
        match = created or fetched
        if match is None:
            self._send_json(*_error(404, 20404), {})
            return
        if (
            match.group("account") != fake.account_sid
            or user != fake.account_sid
            or password != fake.auth_token
        ):
            self._send_json(*_error(401, 20003), {"WWW-Authenticate": 'Basic realm="Twilio API"'})
            return
        failure = fake._next_failure()
        if failure is not None and failure.delay:
            if fake._stopping.wait(failure.delay):
                return
            failure = None
        if failure is not None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            error = _error(failure.status, failure.code, record.form.get("To", ""))
            self._send_json(*error, headers)
            return
        if created and method == "POST":
            status, payload = fake._create(record.form)
        elif created and method == "GET":
            status, payload = fake._list(query)
        elif fetched and method == "GET":
            status, payload = fake._fetch(fetched.group("sid"))
        else:
            status, payload = _error(405, None)
        self._send_json(status, payload, {})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


def fake_twilio_fixture(**kwargs: Any) -> Iterator[FakeTwilio]:
    """Yield a running FakeTwilio and stop it afterwards; use inside a pytest fixture."""
    server = FakeTwilio(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()
