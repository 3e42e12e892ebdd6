"""/api/v1/openapi.json and /api/v1/docs: the API described, as a document and as a page."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template

from service.api.openapi import build_document
from service.api.spec import operation

bp = Blueprint("docs", __name__, url_prefix="/api/v1", template_folder="templates")
TAGS = ("docs",)


def document() -> dict[str, Any]:
    """Return the app's OpenAPI document, built once per app."""
    cached = current_app.extensions.get("openapi")
    if cached is None:
        cached = build_document(current_app)
        current_app.extensions["openapi"] = cached
    return cached


@operation(bp, "/openapi.json", "GET", summary="The OpenAPI 3.1 document", auth=False, tags=TAGS)
def openapi_json() -> Any:
    """This API as OpenAPI 3.1 (no authentication needed)."""
    return jsonify(document())


@operation(bp, "/docs", "GET", summary="Human-readable API documentation", auth=False,
           media="text/html", tags=TAGS)  # fmt: skip
def docs_page() -> Any:
    """The same document rendered as one HTML page (no scripts, no external assets)."""
    doc = document()
    html = render_template(
        "api_docs.html",
        doc=doc,
        groups=_groups(doc),
        schemas=sorted(doc["components"]["schemas"].items()),
        pretty=lambda value: json.dumps(value, indent=2, ensure_ascii=False),
        ref_name=_ref_name,
    )
    return Response(html, mimetype="text/html")


def _ref_name(schema: dict[str, Any] | None) -> str | None:
    if not schema or "$ref" not in schema:
        return None
    return str(schema["$ref"]).rsplit("/", 1)[-1]


def _groups(doc: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Return the operations grouped by their first tag, in path order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            tag = (op.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append({"path": path, "method": method.upper(), **op})
    return sorted(groups.items())
