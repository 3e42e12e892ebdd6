"""Security test fixtures: the API world and the signed-in dashboard clients, shared from their suites."""

from __future__ import annotations

from tests.api.conftest import admin, replans, world  # noqa: F401 - fixtures re-exported
from tests.web.conftest import passwords, web, web_bob  # noqa: F401 - fixtures re-exported
