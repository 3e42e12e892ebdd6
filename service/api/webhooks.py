"""/api/v1/webhooks: the practice's outbound webhook endpoints (secret shown once; admins only).

An endpoint receives every event of the practice (whose check-in was missed, which alert was
raised), so adding, reading and removing one is an admin's decision, like adding a therapist.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, url_for
from sqlalchemy import select

from service import webhooks as core
from service.api.common import json_body, now, paginate, require_admin, validate
from service.api.problems import not_found
from service.api.resources import audit, commit, created, practice_id, register_core_errors
from service.api.schemas.accountability import WebhookCreated, WebhookIn, WebhookOut
from service.api.serialize_engine import webhook_dict
from service.api.spec import PageQuery, operation, page_of
from service.models import WebhookEndpoint

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1")
register_core_errors(bp)
TAGS = ("webhooks",)


@operation(bp, "/webhooks", "GET", summary="List webhook endpoints (admins)", query=PageQuery,
           response=page_of(WebhookOut), errors=(403,), tags=TAGS)  # fmt: skip
def list_webhooks(query: PageQuery) -> Any:
    """The practice's endpoints, oldest first (secrets are never shown again)."""
    require_admin()
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.practice_id == practice_id(), WebhookEndpoint.deleted_at.is_(None)
    )
    page = paginate(stmt, WebhookEndpoint.id, webhook_dict)
    audit("webhook.list", subject_type="webhook", detail={"count": len(page["items"])})
    commit()
    return jsonify(page)


@operation(bp, "/webhooks", "POST", summary="Add a webhook endpoint (admins)", request=WebhookIn,
           response=WebhookCreated, status=201, errors=(403,), tags=TAGS)  # fmt: skip
def create_webhook() -> Any:
    """Add an endpoint; the answer carries its signing secret, shown this once.

    Deliveries are signed the Standard Webhooks way: `webhook-id`, `webhook-timestamp` and
    `webhook-signature` = "v1," + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), the
    key being the base64-decoded part of the secret after "whsec_".
    """
    require_admin()
    body = validate(WebhookIn, json_body())
    endpoint, secret = core.create_endpoint(
        practice_id=practice_id(), url=body.url, description=body.description, now=now()
    )
    audit("webhook.create", subject_type="webhook", subject_id=endpoint.id)
    return created(
        {**webhook_dict(endpoint), "secret": secret},
        url_for("webhooks.get_webhook", webhook_id=endpoint.id),
    )


@operation(bp, "/webhooks/<webhook_id>", "GET", summary="Show a webhook endpoint (admins)",
           response=WebhookOut, errors=(403,), tags=TAGS)  # fmt: skip
def get_webhook(webhook_id: str) -> Any:
    """One endpoint of the practice (without its secret)."""
    endpoint = core.get_endpoint(practice_id(), webhook_id)
    if endpoint is None:
        raise not_found("webhook")
    require_admin()
    audit("webhook.read", subject_type="webhook", subject_id=endpoint.id)
    commit()
    return jsonify(webhook_dict(endpoint))


@operation(bp, "/webhooks/<webhook_id>", "DELETE", summary="Delete a webhook endpoint (admins)",
           status=204, errors=(403,), tags=TAGS)  # fmt: skip
def delete_webhook(webhook_id: str) -> Any:
    """Stop delivering to an endpoint; deliveries still pending are dropped."""
    endpoint = core.get_endpoint(practice_id(), webhook_id)
    if endpoint is None:
        raise not_found("webhook")
    require_admin()
    core.delete_endpoint(endpoint, now=now())
    audit("webhook.delete", subject_type="webhook", subject_id=endpoint.id)
    commit()
    return Response(status=204)
