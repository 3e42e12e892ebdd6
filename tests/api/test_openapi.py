"""The OpenAPI document covers every route, every $ref resolves, responses match; the docs page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from service.api.spec import OPERATIONS
from tests.api.conftest import World

_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def document(client) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_document_structure(client):
    doc = document(client)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert "Problem" in doc["components"]["schemas"]
    operation_ids = []
    for path, methods in doc["paths"].items():
        assert path.startswith("/")
        for method, op in methods.items():
            assert method in ("get", "post", "patch", "delete", "put")
            operation_ids.append(op["operationId"])
            assert op["summary"]
            assert any(code.startswith("2") for code in op["responses"])
            for name in re.findall(r"{(\w+)}", path):
                assert {"name": name, "in": "path"}.items() <= next(
                    p for p in op["parameters"] if p["name"] == name
                ).items()
            for param in op["parameters"]:
                assert "type" in param["schema"] or "anyOf" in param["schema"], param
                assert param["schema"].get("default", 0) is not None
            if op["security"]:
                assert "401" in op["responses"]
            if "requestBody" in op:
                for status in ("400", "413", "415", "422"):
                    assert status in op["responses"]
    assert len(operation_ids) == len(set(operation_ids))


def test_every_api_route_is_documented(app, client):
    doc = document(client)
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = _PARAM.sub(lambda m: "{" + m.group(1) + "}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in doc["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert missing == []


def test_every_ref_resolves(client):
    doc = document(client)

    def resolve(ref: str) -> Any:
        assert ref.startswith("#/"), ref
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node[part]
        return node

    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs
    for ref in refs:
        assert isinstance(resolve(ref), dict), ref
    assert "$defs" not in str(doc)


def test_query_parameters_are_typed(client):
    doc = document(client)
    params = {p["name"]: p for p in doc["paths"]["/api/v1/meetings"]["get"]["parameters"]}
    assert params["day"]["schema"] == {"maximum": 6, "minimum": 0, "type": "integer"}
    assert set(params["attendance"]["schema"]["enum"]) == {
        "in_person",
        "online",
        "hybrid",
        "inactive",
    }
    assert params["active"]["schema"]["type"] == "boolean"
    assert params["limit"]["schema"]["maximum"] == 500
    clients = {p["name"]: p for p in doc["paths"]["/api/v1/clients"]["get"]["parameters"]}
    assert set(clients["status"]["schema"]["enum"]) == {"active", "paused", "discharged"}


def test_schemathesis_accepts_the_document(client):
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_dict(document(client))
    assert len(list(schema.get_all_operations())) >= 40


def test_responses_match_their_read_models(api, world: World, alice):
    """Every GET of mine answers with the model its operation documents."""
    values = {
        "client_id": world.people.carol.id,
        "contact_id": world.people.dave.id,
        "meeting_id": world.meeting.id,
        "plan_id": world.plan.id,
        "commitment_id": world.commitment.id,
        "activity_id": world.activity_id,
        "therapist_id": alice.id,
    }
    checked = 0
    for op in OPERATIONS:
        if op.method != "GET" or op.response is None or op.media != "application/json":
            continue
        if op.blueprint not in {
            "clients",
            "contacts",
            "meetings",
            "plans",
            "messages",
            "therapists",
        }:
            continue
        path = _PARAM.sub(lambda m: values[m.group(1)], op.url_prefix + op.rule)
        response = api.client.get(path, headers=alice.headers)
        assert response.status_code == 200, path
        op.response.model_validate(response.get_json())
        checked += 1
    assert checked >= 15


def test_docs_page(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    doc = document(client)
    for path in doc["paths"]:
        assert path in html
    assert "ClientIn" in html and "Problem" in html
    # No external assets: everything is inline.
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']https?://""", html)
