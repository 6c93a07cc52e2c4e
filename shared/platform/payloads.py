"""Request bodies, query strings and events validated by pydantic models into field-level 400 errors."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request

from shared.platform.errors import ApiError, ValidationFailed

Model = TypeVar("Model")


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
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "The body must be a JSON object")
    return validate(model, data)


def load_query(model: type[Model]) -> Model:
    """The request's query string as `model` (empty parameters count as absent); 400 naming each bad one."""
    return validate(model, {name: value for name, value in request.args.items() if value != ""})
