"""Serve tests/fake_twilio.py in its own process (so it never competes for the dispatcher's GIL)."""

from __future__ import annotations

import argparse
import os
import sys

from tests import fake_twilio
from tests.fake_twilio import FakeTwilio

# http.server writes the headers and the body in separate segments; with Nagle on, each
# response then waits out the client's delayed ACK (~40 ms), a fake-server artefact that
# real Twilio does not have and that would swamp every number measured against it.
fake_twilio._Handler.disable_nagle_algorithm = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    args = parser.parse_args(argv)
    # A seed of its own: the in-process fake provider starts from seed 0 too, and equal
    # message SIDs from two fakes would collide on messages.provider_sid.
    fake = FakeTwilio(
        account_sid=args.account_sid, auth_token=args.auth_token, seed=os.getpid()
    ).start()
    print(fake.base_url, flush=True)
    # Serve until the parent closes our stdin (or kills us).
    sys.stdin.read()
    fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
