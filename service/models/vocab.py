"""The fixed vocabularies of the interface contract, shared by models, schemas and templates."""

from __future__ import annotations

RECOVERY_PATHS = (
    "aa",
    "na",
    "ca",
    "smart",
    "refuge",
    "recovery_dharma",
    "lifering",
    "celebrate",
    "other",
)
TWELVE_STEP_PATHS = ("aa", "na", "ca", "celebrate")
STAGES_OF_CHANGE = ("precontemplation", "contemplation", "preparation", "action", "maintenance")
CLIENT_STATUSES = ("active", "paused", "discharged")
LANGUAGES = ("en", "es")
CONTACT_ROLES = ("sponsor", "peer", "family", "therapist", "other")
CONSENT_METHODS = ("written", "verbal", "keyword")
DISCLOSURE_SCOPES = ("checkins", "missed", "urge")
COMMITMENT_KINDS = ("sponsor_call", "meeting_quota", "step_work", "practice", "homework", "custom")
CHECKIN_STATUSES = (
    "scheduled",
    "prompted",
    "confirmed",
    "declined",
    "missed",
    "excused",
    "cancelled",
    "skipped",
)
CHECKIN_FINAL = ("confirmed", "declined", "missed", "excused", "cancelled", "skipped")
CHECKIN_SOURCES = ("meeting_plan", "commitment")
CHANNELS = ("sms", "dashboard", "api")
ALERT_KINDS = (
    "missed",
    "declined",
    "quota_unmet",
    "crisis",
    "lapse",
    "delivery_failed",
    "opted_out",
    "meeting_inactive",
)
ALERT_STATUSES = ("open", "acknowledged", "resolved")
MESSAGE_DIRECTIONS = ("outbound", "inbound")
MESSAGE_STATUSES = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "received",
    "skipped",
)
MESSAGE_PURPOSES = (
    "reminder",
    "prompt",
    "reply",
    "optin_confirmation",
    "alert",
    "digest",
    "urge_request",
    "milestone",
    "test",
    "inbound",
)
ATTENDANCE = ("in_person", "online", "hybrid", "inactive")
THERAPIST_ROLES = ("therapist", "admin")
ACTIVITY_KINDS = ("therapy_session", "activity")
OPT_OUT_REASONS = ("opt_out", "invalid_number", "not_mobile")


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """Return a CHECK constraint expression limiting `column` to `values`."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"
