"""The domain model: one module per aggregate, all re-exported here."""

from __future__ import annotations

from service.models.alert import Alert
from service.models.audit import AuditEntry
from service.models.checkin import CheckIn
from service.models.client import Client, SupportContact
from service.models.consent import DisclosureConsent, OptOut, SmsConsent
from service.models.event import Event, WebhookDelivery, WebhookEndpoint
from service.models.feed import FeedToken
from service.models.meeting import Meeting, MeetingFeed
from service.models.message import Message
from service.models.plan import Activity, Commitment, MeetingPlan
from service.models.practice import ApiToken, Practice, Therapist
from service.models.ratelimit import RateLimitBucket

__all__ = [
    "Activity",
    "Alert",
    "ApiToken",
    "AuditEntry",
    "CheckIn",
    "Client",
    "Commitment",
    "DisclosureConsent",
    "Event",
    "FeedToken",
    "Meeting",
    "MeetingFeed",
    "MeetingPlan",
    "Message",
    "OptOut",
    "Practice",
    "RateLimitBucket",
    "SmsConsent",
    "SupportContact",
    "Therapist",
    "WebhookDelivery",
    "WebhookEndpoint",
]
