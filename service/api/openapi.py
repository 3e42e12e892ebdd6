"""Build the OpenAPI 3.1 document from the operation registry and the pydantic schemas."""

from __future__ import annotations

import copy
from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.api.problems import _TITLES
from service.api.spec import Operation, operations_for

REF = "#/components/schemas/{model}"
API_VERSION = "1.0.0"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; `errors` maps each bad field to its messages.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["type", "title", "status", "detail"],
}

_CONVERTER_SCHEMAS = {"int": {"type": "integer"}, "float": {"type": "number"}}


def build_document(app: Flask) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for the operations registered on `app`."""
    ops = operations_for(set(app.blueprints))
    refs, components = _schemas(ops)
    paths: dict[str, dict[str, Any]] = {}
    for op in sorted(ops, key=lambda o: (o.path, o.method)):
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs, components)
    components["Problem"] = PROBLEM_SCHEMA
    tags = sorted({tag for op in ops for tag in op.tags})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Steadfast API",
            "version": API_VERSION,
            "description": (
                "Accountability for addiction-therapy clients: support networks, meeting plans, "
                "commitments, SMS check-ins and alerts. Authenticate with "
                "`Authorization: Bearer <token>`; errors are RFC 9457 problem+json."
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _schemas(ops: list[Operation]) -> tuple[dict[tuple[type[BaseModel], str], Any], dict[str, Any]]:
    """Generate every model's schema once, with all $defs hoisted into components."""
    wanted: list[tuple[type[BaseModel], Any]] = []
    seen: set[tuple[type[BaseModel], str]] = set()
    for op in ops:
        pairs = [
            (op.request, "validation"),
            (op.query, "validation"),
            (op.response, "serialization"),
        ]
        for model, mode in pairs:
            if model is not None and (model, mode) not in seen:
                seen.add((model, mode))
                wanted.append((model, mode))
    if not wanted:
        return {}, {}
    refs, top = models_json_schema(wanted, ref_template=REF)
    return dict(refs), dict(top.get("$defs", {}))


def _operation(
    op: Operation, refs: dict[tuple[type[BaseModel], str], Any], components: dict[str, Any]
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": list(op.tags),
        "parameters": _path_parameters(op) + _query_parameters(op, refs, components),
        "responses": _responses(op, refs),
    }
    if op.description:
        doc["description"] = op.description
    if op.request is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.request, "validation")]}},
        }
    doc["security"] = [{"bearer": []}] if op.auth else []
    return doc


def _path_parameters(op: Operation) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": dict(_CONVERTER_SCHEMAS.get(conv, {"type": "string", "maxLength": 100})),
        }
        for name, conv in op.path_params
    ]


def _query_parameters(
    op: Operation, refs: dict[tuple[type[BaseModel], str], Any], components: dict[str, Any]
) -> list[dict[str, Any]]:
    if op.query is None:
        return []
    name = refs[(op.query, "validation")]["$ref"].rsplit("/", 1)[-1]
    model_schema = components[name]
    required = set(model_schema.get("required", ()))
    params = []
    for field_name, prop in model_schema.get("properties", {}).items():
        schema = _query_value_schema(prop)
        param: dict[str, Any] = {
            "name": field_name,
            "in": "query",
            "required": field_name in required,
            "schema": schema,
        }
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def _query_value_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """Drop the null branch and null default of optional parameters: a query value is text."""
    schema = copy.deepcopy(prop)
    schema.pop("title", None)
    schema.pop("description", None)
    if schema.get("default", 0) is None:
        schema.pop("default")
    branches = schema.get("anyOf")
    if branches:
        kept = [b for b in branches if b.get("type") != "null"]
        if len(kept) == 1:
            schema.pop("anyOf")
            schema.update(kept[0])
        else:
            schema["anyOf"] = kept
    return schema


def _responses(op: Operation, refs: dict[tuple[type[BaseModel], str], Any]) -> dict[str, Any]:
    success: dict[str, Any] = {"description": _TITLES.get(op.status, "Success")}
    if op.status == 200:
        success["description"] = "OK"
    elif op.status == 201:
        success["description"] = "Created"
        success["headers"] = {
            "Location": {"description": "URL of the new resource", "schema": {"type": "string"}}
        }
    elif op.status == 204:
        success["description"] = "No Content"
    if op.response is not None:
        success["content"] = {op.media: {"schema": refs[(op.response, "serialization")]}}
    elif op.status != 204:
        media_schema: dict[str, Any] = (
            {"type": "object"} if op.media.endswith("json") else {"type": "string"}
        )
        success["content"] = {op.media: {"schema": media_schema}}
    responses: dict[str, Any] = {str(op.status): success}
    for status in op.errors:
        if status in op.bare_errors:
            # Answered with an empty body on purpose (e.g. a feed miss reveals nothing).
            responses[str(status)] = {"description": _TITLES.get(status, "Error")}
            continue
        responses[str(status)] = {
            "description": _TITLES.get(status, "Error"),
            "content": {
                "application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}
            },
        }
    return responses
