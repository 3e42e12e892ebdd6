"""TwilioProvider on the real twilio library, against the fake Twilio server on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from service.notifications.providers import (
    ConsoleProvider,
    DeliveryError,
    FakeProvider,
    RebasingHttpClient,
    TwilioProvider,
    build_provider,
    parse_retry_after,
)
from tests.fake_twilio import FakeTwilio, fake_twilio_fixture
from tests.notifications.conftest import FROM_NUMBER

TO = "+15551234567"
SERVICE_SID = "MG" + "a" * 32


def send(provider: TwilioProvider, key: str = "k", **overrides):
    kwargs = {
        "to": TO,
        "body": "Steadfast reminder: meeting at 7:00 PM today.",
        "sender": None,
        "status_callback": None,
        "validity_seconds": None,
        "idempotency_key": key,
    }
    kwargs.update(overrides)
    return provider.send(**kwargs)


def sent_error(provider: TwilioProvider, key: str = "k") -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        send(provider, key)
    return caught.value


# ---- the request the real library built ----------------------------------------


def test_the_fake_server_sees_the_libraries_request(
    twilio_provider: TwilioProvider, fake_twilio: FakeTwilio
) -> None:
    result = send(
        twilio_provider,
        status_callback="https://steadfast.example/sms/status?id=42",
        validity_seconds=900,
    )

    [post] = fake_twilio.posts()
    assert post.path == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    assert post.form == {
        "To": TO,
        "From": FROM_NUMBER,
        "Body": "Steadfast reminder: meeting at 7:00 PM today.",
        "StatusCallback": "https://steadfast.example/sms/status?id=42",
        "ValidityPeriod": "900",
    }
    assert (post.username, post.password) == (fake_twilio.account_sid, fake_twilio.auth_token)
    assert post.headers["User-Agent"].startswith("twilio-python/9.")
    assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert result.sid.startswith("SM") and len(result.sid) == 34
    assert (result.status, result.segments) == ("queued", 1)


def test_optional_fields_are_left_out(
    twilio_provider: TwilioProvider, fake_twilio: FakeTwilio
) -> None:
    send(twilio_provider)
    assert set(fake_twilio.posts()[0].form) == {"To", "From", "Body"}


def test_messaging_service_sends_messaging_service_sid(fake_twilio: FakeTwilio) -> None:
    provider = TwilioProvider.from_settings(
        fake_twilio.account_sid,
        fake_twilio.auth_token,
        messaging_service_sid=SERVICE_SID,
        base_url=fake_twilio.base_url,
    )
    with provider:
        result = send(provider)
    form = fake_twilio.posts()[0].form
    assert form["MessagingServiceSid"] == SERVICE_SID
    assert "From" not in form
    assert result.status == "accepted"


@pytest.mark.parametrize(
    ("sender", "field"), [("+15550002222", "From"), (SERVICE_SID, "MessagingServiceSid")]
)
def test_sender_overrides_the_default(
    twilio_provider: TwilioProvider, fake_twilio: FakeTwilio, sender: str, field: str
) -> None:
    send(twilio_provider, sender=sender)
    form = fake_twilio.posts()[0].form
    assert form[field] == sender
    assert ({"From", "MessagingServiceSid"} - {field}).isdisjoint(form)


def test_validity_is_capped_at_twilios_maximum(
    twilio_provider: TwilioProvider, fake_twilio: FakeTwilio
) -> None:
    send(twilio_provider, validity_seconds=10**6)
    assert fake_twilio.posts()[0].form["ValidityPeriod"] == "36000"
    with pytest.raises(ValueError):
        send(twilio_provider, key="k2", validity_seconds=0)


def test_segments_come_from_twilio(twilio_provider: TwilioProvider) -> None:
    assert send(twilio_provider, body="x" * 200).segments == 2
    assert send(twilio_provider, key="k2", body="ü" * 10 + "😀").segments == 1


def test_requests_go_to_the_base_url_not_twilio() -> None:
    client = RebasingHttpClient(base_url="http://127.0.0.1:9/prefix/", timeout=1)
    try:
        url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=2&Page=1"
        assert client.rebase(url) == (
            "http://127.0.0.1:9/prefix/2010-04-01/Accounts/AC1/Messages.json?PageSize=2&Page=1"
        )
    finally:
        client.close()
    plain = RebasingHttpClient(timeout=1)
    try:
        assert plain.rebase("https://api.twilio.com/x") == "https://api.twilio.com/x"
    finally:
        plain.close()
    with pytest.raises(ValueError):
        RebasingHttpClient(base_url="127.0.0.1:9")


# ---- failures ----------------------------------------------------------------------


@pytest.mark.parametrize("code", [21610, 21211, 21614, 21408, 21612])
def test_permanent_codes(
    twilio_provider: TwilioProvider, fake_twilio: FakeTwilio, code: int
) -> None:
    fake_twilio.fail_next(1, code=code, status=400)
    error = sent_error(twilio_provider)
    assert (error.permanent, error.code, error.status, error.maybe_sent) == (
        True,
        code,
        400,
        False,
    )
    assert error.retry_after is None
    assert TO not in str(error) and TO[2:] not in str(error)


def test_unsubscribed_recipient(twilio_provider: TwilioProvider, fake_twilio: FakeTwilio) -> None:
    fake_twilio.fail_next(1, code=21610)
    error = sent_error(twilio_provider)
    assert error.permanent and error.code == 21610
    assert "opted out" in str(error)


def test_invalid_number_rejected_by_the_server(twilio_provider: TwilioProvider) -> None:
    with pytest.raises(DeliveryError) as caught:
        send(twilio_provider, to="+1555")
    assert (caught.value.permanent, caught.value.code) == (True, 21211)
    assert "+1555" not in str(caught.value)


@pytest.mark.parametrize("retry_after", ["5", 5])
def test_429_is_transient_with_retry_after(
    twilio_provider: TwilioProvider, fake_twilio: FakeTwilio, retry_after: str | int
) -> None:
    fake_twilio.fail_next(1, status=429, retry_after=retry_after)
    error = sent_error(twilio_provider)
    assert (error.permanent, error.code, error.status) == (False, 20429, 429)
    assert error.retry_after == 5.0
    assert error.maybe_sent is False


def test_retry_after_as_an_http_date(
    twilio_provider: TwilioProvider, fake_twilio: FakeTwilio
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    fake_twilio.fail_next(1, status=429, retry_after=when)
    error = sent_error(twilio_provider)
    assert 25 <= (error.retry_after or 0) <= 31


def test_429_without_retry_after(twilio_provider: TwilioProvider, fake_twilio: FakeTwilio) -> None:
    fake_twilio.fail_next(1, status=429)
    error = sent_error(twilio_provider)
    assert error.permanent is False and error.retry_after is None


def test_queue_full_is_transient(twilio_provider: TwilioProvider, fake_twilio: FakeTwilio) -> None:
    fake_twilio.fail_next(1, code=21611, status=400)
    error = sent_error(twilio_provider)
    assert (error.permanent, error.code) == (False, 21611)


@pytest.mark.parametrize(("status", "maybe_sent"), [(500, True), (502, True), (503, False)])
def test_5xx_is_transient(
    twilio_provider: TwilioProvider, fake_twilio: FakeTwilio, status: int, maybe_sent: bool
) -> None:
    fake_twilio.fail_next(1, status=status)
    error = sent_error(twilio_provider)
    assert (error.permanent, error.status, error.maybe_sent) == (False, status, maybe_sent)


def test_timeout_is_transient_and_maybe_sent(fake_twilio: FakeTwilio) -> None:
    provider = TwilioProvider.from_settings(
        fake_twilio.account_sid,
        fake_twilio.auth_token,
        from_number=FROM_NUMBER,
        base_url=fake_twilio.base_url,
        timeout=0.3,
    )
    fake_twilio.timeout_next(1, seconds=1.0)
    before = datetime.now(UTC)
    with provider:
        error = sent_error(provider)
        assert (error.permanent, error.maybe_sent, error.status) == (False, True, None)
        assert "timed out" in str(error)
        # The server did create the message after the client gave up: exactly the case
        # lookup() exists for.
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        found = []
        while not found and datetime.now(UTC) < deadline:
            found = provider.lookup(to=TO, since=before, until=datetime.now(UTC))
        assert len(found) == 1


def test_connection_refused_is_transient_and_not_sent() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = TwilioProvider.from_settings(
        "AC" + "0" * 32, "token", from_number=FROM_NUMBER, base_url=f"http://127.0.0.1:{port}"
    )
    with provider:
        error = sent_error(provider)
    assert (error.permanent, error.maybe_sent) == (False, False)


def test_transport_failures_log_no_numbers(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = TwilioProvider.from_settings(
        "AC" + "0" * 32, "token", from_number=FROM_NUMBER, base_url=f"http://127.0.0.1:{port}"
    )
    caplog.set_level(logging.DEBUG)
    now = datetime.now(UTC)
    with provider, pytest.raises(DeliveryError) as caught:
        provider.lookup(to=TO, since=now - timedelta(minutes=5), until=now)
    assert caught.value.permanent is False
    texts = [r.getMessage() for r in caplog.records] + [str(caught.value)]
    assert caplog.records
    for text in texts:
        assert TO[2:] not in text, text


def test_wrong_credentials_are_an_account_problem(fake_twilio: FakeTwilio) -> None:
    provider = TwilioProvider.from_settings(
        fake_twilio.account_sid,
        "wrong-token",
        from_number=FROM_NUMBER,
        base_url=fake_twilio.base_url,
    )
    with provider:
        error = sent_error(provider)
    # Not the message's fault: keep it for a retry once the account is fixed.
    assert (error.permanent, error.code, error.status) == (False, 20003, 401)
    assert fake_twilio.messages == {}


def test_wrong_account_sid_is_refused(fake_twilio: FakeTwilio) -> None:
    provider = TwilioProvider.from_settings(
        "AC" + "1" * 32,
        fake_twilio.auth_token,
        from_number=FROM_NUMBER,
        base_url=fake_twilio.base_url,
    )
    with provider:
        assert sent_error(provider).status == 401


@pytest.mark.parametrize(
    ("status", "code", "permanent"), [(500, 20500, False), (429, 20429, False), (400, 20001, True)]
)
def test_lookup_errors_are_delivery_errors(
    twilio_provider: TwilioProvider,
    fake_twilio: FakeTwilio,
    status: int,
    code: int,
    permanent: bool,
) -> None:
    fake_twilio.fail_next(1, status=status, code=code, retry_after=2 if status == 429 else None)
    now = datetime.now(UTC)
    with pytest.raises(DeliveryError) as caught:
        twilio_provider.lookup(to=TO, since=now - timedelta(minutes=5), until=now)
    error = caught.value
    assert (error.permanent, error.status, error.code) == (permanent, status, code)
    assert error.retry_after == (2.0 if status == 429 else None)
    assert TO not in str(error)


# ---- lookup ------------------------------------------------------------------------


def test_lookup_filters_by_to_and_date_sent(
    twilio_provider: TwilioProvider, fake_twilio: FakeTwilio
) -> None:
    before = datetime.now(UTC)
    result = send(twilio_provider)
    found = twilio_provider.lookup(to=TO, since=before, until=datetime.now(UTC))
    assert [r.sid for r in found] == [result.sid]
    filtered, newest = [r for r in fake_twilio.requests if r.method == "GET"]
    assert filtered.query["To"] == newest.query["To"] == [TO]
    assert filtered.query["DateSent>"][0].endswith("Z")
    assert "DateSent>" not in newest.query
    assert found[0].status == "sent"


def test_lookup_finds_a_text_still_queued_at_twilio(
    twilio_provider: TwilioProvider, fake_twilio: FakeTwilio
) -> None:
    # Queued texts have no DateSent, so a DateSent> filter alone would miss them and a
    # reconcile would resend a text Twilio is about to deliver.
    fake_twilio.hold_queued = True
    before = datetime.now(UTC)
    result = send(twilio_provider)
    found = twilio_provider.lookup(to=TO, since=before, until=datetime.now(UTC))
    assert [(r.sid, r.status) for r in found] == [(result.sid, "queued")]


def test_lookup_follows_pages_through_the_base_url(fake_twilio: FakeTwilio) -> None:
    http_client = RebasingHttpClient(base_url=fake_twilio.base_url, timeout=2)
    client = Client(fake_twilio.account_sid, fake_twilio.auth_token, http_client=http_client)
    provider = TwilioProvider(client, from_number=FROM_NUMBER, lookup_page_size=2)
    before = datetime.now(UTC)
    with provider:
        sids = {send(provider, key=f"k{i}", body=f"message {i}").sid for i in range(5)}
        found = provider.lookup(to=TO, since=before, until=datetime.now(UTC))
    assert {r.sid for r in found} == sids
    assert [r.date_created for r in found] == sorted(r.date_created for r in found)
    gets = [r for r in fake_twilio.requests if r.method == "GET"]
    # Pages 2 and 3 came from next_page_uri, an api.twilio.com URL rebased to the fake: for
    # the DateSent-filtered read, then for the read of the newest texts.
    assert [g.query.get("Page", ["0"])[0] for g in gets] == ["0", "1", "2"] * 2
    assert ["DateSent>" in g.query for g in gets] == [True] * 3 + [False] * 3


def test_fetch_one_message(twilio_provider: TwilioProvider, fake_twilio: FakeTwilio) -> None:
    result = send(twilio_provider)
    message = twilio_provider.client.messages(result.sid).fetch()
    assert (message.sid, message.to, message.status) == (result.sid, TO, "sent")
    with pytest.raises(Exception) as caught:
        twilio_provider.client.messages("SM" + "0" * 32).fetch()
    assert getattr(caught.value, "status", None) == 404


# ---- construction ------------------------------------------------------------------


def test_from_settings_needs_exactly_one_sender() -> None:
    with pytest.raises(ValueError):
        TwilioProvider.from_settings("AC1", "token")
    with pytest.raises(ValueError):
        TwilioProvider.from_settings(
            "AC1", "token", from_number=FROM_NUMBER, messaging_service_sid=SERVICE_SID
        )
    with pytest.raises(ValueError, match="TWILIO_AUTH_TOKEN"):
        TwilioProvider.from_settings("AC1", "", from_number=FROM_NUMBER)


def test_build_provider() -> None:
    assert isinstance(build_provider("console", {}), ConsoleProvider)
    assert isinstance(build_provider("FAKE", {}), FakeProvider)
    with pytest.raises(ValueError, match="carrier-pigeon"):
        build_provider("carrier-pigeon", {})


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        ({}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": "AC1"}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}, "TWILIO_FROM_NUMBER"),
    ],
)
def test_build_provider_names_the_missing_setting(settings: dict, missing: str) -> None:
    with pytest.raises(ValueError, match=missing):
        build_provider("twilio", settings)


def test_build_provider_twilio_end_to_end(fake_twilio: FakeTwilio) -> None:
    provider = build_provider(
        "twilio",
        {
            "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
            "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
            "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID,
            "TWILIO_API_BASE_URL": fake_twilio.base_url,
        },
    )
    assert isinstance(provider, TwilioProvider)
    with provider:
        assert send(provider).status == "accepted"


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_retry_after("Tue, 01 Jan 2030 00:01:00 GMT", now) == 60.0


# ---- the fake server itself ----------------------------------------------------------


class _Receiver:
    """A tiny webhook endpoint that checks X-Twilio-Signature like our app will."""

    def __init__(self, auth_token: str) -> None:
        receiver = self
        self.auth_token = auth_token
        self.received: list[dict[str, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
                form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
                ok = RequestValidator(receiver.auth_token).validate(
                    url, form, self.headers.get("X-Twilio-Signature", "")
                )
                receiver.received.append(form)
                body = b"<Response/>" if ok else b"bad signature"
                self.send_response(200 if ok else 403)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/sms/status?x=1"


@pytest.fixture
def receiver(fake_twilio: FakeTwilio) -> Iterator[_Receiver]:
    rec = _Receiver(fake_twilio.auth_token)
    rec.thread.start()
    try:
        yield rec
    finally:
        rec.server.shutdown()
        rec.server.server_close()
        rec.thread.join(timeout=5)


def test_status_callback_is_signed(
    twilio_provider: TwilioProvider, fake_twilio: FakeTwilio, receiver: _Receiver
) -> None:
    result = send(twilio_provider)
    answer = fake_twilio.send_status_callback(receiver.url, result.sid, "undelivered", 30003)
    assert answer == (200, "<Response/>")
    form = receiver.received[0]
    assert form["MessageSid"] == result.sid
    assert (form["MessageStatus"], form["ErrorCode"]) == ("undelivered", "30003")
    assert (form["To"], form["From"], form["AccountSid"]) == (
        TO,
        FROM_NUMBER,
        fake_twilio.account_sid,
    )
    assert fake_twilio.messages[result.sid]["status"] == "undelivered"


def test_status_callback_with_another_token_fails_validation(
    fake_twilio: FakeTwilio, receiver: _Receiver
) -> None:
    answer = fake_twilio.send_status_callback(
        receiver.url,
        "SM" + "1" * 32,
        "delivered",
        auth_token="not-the-token",
        to=TO,
        from_=FROM_NUMBER,
    )
    assert answer.status == 403
    assert "ErrorCode" not in receiver.received[0]


def test_inbound_message_is_signed(fake_twilio: FakeTwilio, receiver: _Receiver) -> None:
    status, body = fake_twilio.send_inbound(receiver.url, TO, FROM_NUMBER, "1 K7 ✓")
    assert (status, body) == (200, "<Response/>")
    form = receiver.received[0]
    assert (form["From"], form["To"], form["Body"]) == (TO, FROM_NUMBER, "1 K7 ✓")
    assert form["MessageSid"].startswith("SM") and form["SmsStatus"] == "received"


def test_random_failures_are_reproducible() -> None:
    def pattern(seed: int) -> list[bool]:
        outcomes = []
        for server in fake_twilio_fixture(failure_rate=0.5, seed=seed):
            provider = TwilioProvider.from_settings(
                server.account_sid,
                server.auth_token,
                from_number=FROM_NUMBER,
                base_url=server.base_url,
            )
            with provider:
                for i in range(12):
                    try:
                        send(provider, key=f"k{i}")
                        outcomes.append(True)
                    except DeliveryError as error:
                        assert error.permanent is False
                        outcomes.append(False)
        return outcomes

    first = pattern(7)
    assert first == pattern(7)
    assert True in first and False in first


def test_a_post_cut_off_mid_body_creates_nothing_and_is_not_counted(fake_twilio):
    # A dispatcher killed while sending leaves half a request; Twilio acts on none of it.
    address = urlsplit(fake_twilio.base_url)
    body = b"To=%2B15005550101&From=%2B15005550006&Body=Steadfast%3A+hello"
    head = (
        f"POST /2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(head + body[:20])
    deadline = time.monotonic() + 5
    while not fake_twilio.torn_posts() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(fake_twilio.torn_posts()) == 1
    assert fake_twilio.posts() == []
    assert fake_twilio.messages == {}


# ---- connections -----------------------------------------------------------------


def test_every_sender_of_a_paced_run_keeps_its_connection(
    twilio_provider: TwilioProvider, fake_twilio: FakeTwilio
) -> None:
    from service.notifications.dispatch import _MAX_PACED_SENDERS

    session = twilio_provider.client.http_client.session
    for scheme in ("https://", "http://"):  # Twilio's, and the fake server's
        pool_kw = session.adapters[scheme].poolmanager.connection_pool_kw
        assert pool_kw["maxsize"] >= _MAX_PACED_SENDERS
    # each answer takes 50 ms, so every round's sends are in flight together
    fake_twilio.timeout_next(3 * _MAX_PACED_SENDERS, seconds=0.05)
    start = threading.Barrier(_MAX_PACED_SENDERS)
    failures: list[BaseException] = []

    def sender(n: int) -> None:
        try:
            for round_ in range(3):
                start.wait(timeout=10)
                send(twilio_provider, key=f"k{n}-{round_}", to=f"+1555200{n:04d}")
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(_MAX_PACED_SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures
    assert len(fake_twilio.messages) == 3 * _MAX_PACED_SENDERS
    pools = session.get_adapter(fake_twilio.base_url).poolmanager.pools
    # urllib3's RecentlyUsedContainer refuses iteration itself; keys() is its way
    opened = sum(pools[key].num_connections for key in pools.keys())  # noqa: SIM118
    # a connection per sender at most, each reused: none opened and thrown away after its send
    assert _MAX_PACED_SENDERS // 2 <= opened <= _MAX_PACED_SENDERS
