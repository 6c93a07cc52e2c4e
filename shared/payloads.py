"""JSON request bodies, validated by pydantic models into field-level 400 errors."""

from __future__ import annotations

from typing import TypeVar

from flask import request

from shared.errors import ApiError, ValidationFailed

Model = TypeVar("Model")


def load_json(model: type[Model]) -> Model:
    """The request's JSON body as `model`; 400 naming each bad field, or for malformed JSON."""
    from pydantic import ValidationError

    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "The body must be a JSON object")
    try:
        return model.model_validate(data)  # type: ignore[attr-defined]
    except ValidationError as err:
        fields: dict[str, str] = {}
        for problem in err.errors():
            name = ".".join(str(part) for part in problem["loc"]) or "body"
            fields.setdefault(name, problem["msg"].removeprefix("Value error, "))
        raise ValidationFailed(fields) from None
