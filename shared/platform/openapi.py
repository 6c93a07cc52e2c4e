"""The OpenAPI 3.1 document of an app's JSON routes, built from the pydantic models the routes use.

Each app lists its JSON routes (endpoint -> `Route`) in its own `api_doc.py` and hands the table to
the app's config (OPENAPI_ROUTES); the platform adds its own (POST /auth/token). `document(app)`
walks the URL map: every JSON route (a path under the app's JSON prefixes) is documented, with its
path parameters, its query (a pydantic model's fields, or named parameters), its body (the model's
own JSON Schema, `model_json_schema()`: pydantic writes JSON Schema 2020-12, which OpenAPI 3.1 takes
as it is), how it authenticates, and its answers: the success status with the JSON it holds, and the
error shape every refusal has. No library: the models already know their schemas, and nothing is
added to the Lambda packages.

Served at /api/openapi.json, with a page for people at /api/docs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template

bp = Blueprint("openapi", __name__)

ERROR = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}},
}
REFUSALS = {
    "400": "The request is not valid: `fields` names each bad field",
    "401": "No valid bearer token (or signature)",
    "403": "The caller may not do this",
    "404": "Not found, or not the caller's",
    "405": "Method not allowed",
    "409": "Conflicts with the current state",
    "413": "The body is too large",
    "429": "Too many attempts",
    "503": "A service this route reads (the queues) cannot be reached; try again",
}


@dataclass(frozen=True)
class Route:
    """What the document says of one JSON route (its view's endpoint is the key of the app's table)."""

    summary: str
    body: Any = None  # a pydantic model class
    query: Any = None  # a pydantic model class, or {name: JSON Schema}
    status: int = 200  # the success status
    answer: dict = field(default_factory=lambda: {"type": "object"})  # its JSON (302: a Location)
    auth: str = "bearer"  # "bearer", "signature" (the pipeline's HMAC) or "none"
    refusals: tuple[str, ...] = ("400", "401", "403", "404")


PLATFORM_ROUTES = {}  # filled below, once the token request's model is importable


def _schema(model) -> tuple[dict, dict]:
    """(schema with local refs, its definitions) of a pydantic model, refs pointing at components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    return schema, definitions


def _query_parameters(query, components: dict) -> list[dict]:
    if query is None:
        return []
    if isinstance(query, dict):
        return [{"name": name, "in": "query", "required": False, "schema": schema} for name, schema in query.items()]
    schema, definitions = _schema(query)
    components.update(definitions)
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()]


def _operation(route: Route, rule, components: dict) -> dict:
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[A-Za-z0-9_.-]+$"}}
                  for name in sorted(rule.arguments)]
    parameters += _query_parameters(route.query, components)
    operation: dict[str, Any] = {"summary": route.summary, "operationId": rule.endpoint, "parameters": parameters}
    if route.body is not None:
        schema, definitions = _schema(route.body)
        components.update(definitions)
        components[route.body.__name__] = schema
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{route.body.__name__}"}}}}
    success: dict[str, Any] = {"description": "Done"}
    if route.status == 302:
        success = {"description": "A short-lived download link in Location",
                   "headers": {"Location": {"schema": {"type": "string"}}}}
    elif route.status != 204:
        success["content"] = {"application/json": {"schema": route.answer}}
    responses = {str(route.status): success}
    refusals = set(route.refusals) | {"400", "405", "413", "429"}
    if route.auth != "none":
        refusals |= {"401"}
    for code in sorted(refusals):
        responses[code] = {"description": REFUSALS[code],
                           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    operation["responses"] = responses
    if route.auth == "bearer":
        operation["security"] = [{"bearer": []}]
    elif route.auth == "signature":
        operation["security"] = [{"signature": [], "timestamp": []}]
    else:
        operation["security"] = []
    return operation


def json_rules(app) -> list:
    prefixes = tuple(app.config["JSON_PATH_PREFIXES"])
    return [rule for rule in app.url_map.iter_rules()
            if rule.rule.startswith(prefixes) and not rule.endpoint.startswith("openapi.")]


def document(app) -> dict:
    """The app's OpenAPI 3.1 document (every JSON route must have a Route: KeyError otherwise)."""
    from shared.platform.auth.views import TokenRequest

    table = {"auth.token": Route("Sign in with email and password: Cognito's tokens (the id token is the bearer)",
                                 body=TokenRequest, auth="none", refusals=("400", "401", "403")),
             **app.config.get("OPENAPI_ROUTES", {})}
    components: dict[str, Any] = {"Error": ERROR}
    paths: dict[str, dict] = {}
    for rule in sorted(json_rules(app), key=lambda r: r.rule):
        route = table[rule.endpoint]
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", "{" + name + "}")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(route, rule, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{app.config.get('APP_TITLE', app.name)} ({app.name}) JSON API", "version": "1",
                 "description": "Every JSON route of this app. Errors always have the shape "
                                "{\"error\": {\"code\", \"message\", \"fields\"?}}. Sign in with POST /auth/token "
                                "and send the id token as `Authorization: Bearer <id_token>`."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (Cognito id token)"},
                "signature": {"type": "apiKey", "in": "header", "name": "X-Signature",
                              "description": "HMAC-SHA256 of `<timestamp>.<body>` with the sync secret"},
                "timestamp": {"type": "apiKey", "in": "header", "name": "X-Signature-Timestamp"},
            },
        },
    }


@bp.get("/api/openapi.json")
def openapi_json():
    return jsonify(document(current_app._get_current_object()))


@bp.get("/api/docs")
def docs():
    """The document for people: each route, what it takes and what it answers."""
    import json

    spec = document(current_app._get_current_object())
    return render_template("openapi/docs.html", spec=spec, dumps=lambda value: json.dumps(
        value, ensure_ascii=False, indent=2))
