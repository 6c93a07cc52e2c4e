"""Request bodies, query strings and events validated by pydantic models into field-level 400 errors."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from flask import request
from flask.json.provider import DefaultJSONProvider

from shared.platform.errors import ApiError, ValidationFailed

Model = TypeVar("Model")

# JSON bodies are bounded before they are parsed: a deeply nested document would exhaust the parser's
# recursion (a 500), a huge one its memory. No JSON route of ours takes anything near either bound.
MAX_JSON_BYTES = 256 * 1024
MAX_JSON_DEPTH = 32
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")


class JSONTooLarge(ValueError):
    """A JSON document over MAX_JSON_BYTES or nested deeper than MAX_JSON_DEPTH (refused unparsed)."""


def check_json_bounds(data: bytes | str) -> None:
    """Raise JSONTooLarge unless `data` is within the size and nesting bounds (found without parsing)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > MAX_JSON_BYTES:
        raise JSONTooLarge(f"The JSON body is larger than {MAX_JSON_BYTES} bytes")
    depth = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub(b"", data)):  # brackets outside strings
        depth += 1 if bracket.group() in (b"[", b"{") else -1
        if depth > MAX_JSON_DEPTH:
            raise JSONTooLarge(f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels")


class BoundedJSONProvider(DefaultJSONProvider):
    """The apps' JSON: request.get_json() refuses out-of-bounds documents (a ValueError: 400) unparsed,
    so no route can be made to recurse or allocate without limit; Korean text stays readable."""

    ensure_ascii = False

    def loads(self, s, **kwargs):
        check_json_bounds(s)
        return super().loads(s, **kwargs)


def field_errors(err, prefix: str = "") -> dict[str, str]:
    """A pydantic ValidationError as {field: message}: each field named by its dotted path (after
    `prefix`), with its first message."""
    fields: dict[str, str] = {}
    for problem in err.errors(include_input=False, include_url=False):
        name = prefix + (".".join(str(part) for part in problem["loc"]) or "body")
        fields.setdefault(name, problem["msg"].removeprefix("Value error, "))
    return fields


def validate(model: type[Model], data: Any, prefix: str = "") -> Model:
    """`data` (a dict, or already a `model`) as `model`; 400 naming each bad field otherwise."""
    from pydantic import ValidationError

    if isinstance(data, model):
        return data
    if not isinstance(data, dict):
        raise ValidationFailed({prefix.rstrip(".") or "body": "must be an object"})
    try:
        return model.model_validate(data)  # type: ignore[attr-defined]
    except ValidationError as err:
        raise ValidationFailed(field_errors(err, prefix)) from None


def load_json(model: type[Model]) -> Model:
    """The request's JSON body as `model`; 400 naming each bad field, or for malformed JSON."""
    try:
        check_json_bounds(request.get_data(cache=True))
    except JSONTooLarge as err:
        raise ApiError(400, "malformed_json", str(err)) from None
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "The body must be a JSON object")
    return validate(model, data)


def load_query(model: type[Model]) -> Model:
    """The request's query string as `model` (empty parameters count as absent); 400 naming each bad one."""
    return validate(model, {name: value for name, value in request.args.items() if value != ""})
