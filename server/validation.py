"""Request bodies: read the JSON, validate it against a schema, answer problems the API's way.

Schemas (each package's `schemas.py`) are strict pydantic models: nothing is coerced ("4" is
not 4, "yes" is not true) and unknown fields are refused. A field whose limits live in
gan_core.rules is checked by the rules' own function (`ruled`) and documented with the same
constants, so the 422 message is the library's message and the OpenAPI document shows what
is really checked. Malformed bodies are 400 `bad_request`; wrong values are 422
`invalid_input` with one readable message that names the field, never pydantic's dump.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Annotated, Any, Callable, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, ValidationInfo, WithJsonSchema

from gan_core import rules
from server.errors import bad_request, invalid_input

S = TypeVar("S", bound=BaseModel)
REPR_CHARS = 60  # a value quoted back in a message is cut to this
# The largest JSON body any route reads (a walk with a z vector on every one of its frames
# stays well below it); larger bodies are 413 before they are read.
MAX_JSON_BODY_BYTES = 16 << 20
# Our deepest body is a walk's waypoints[i].z[j] (depth 4); anything far deeper is an attack
# on the parser (Python's json recurses, and deep values are costly to describe).
MAX_JSON_DEPTH = 32


class Schema(BaseModel):
    """Base of every request body: strict types, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Document(BaseModel):
    """Base of response bodies: documentation only (the routes build plain dicts); the
    in-process tests validate real answers against them to keep the two in step."""

    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------- field types

# Every time in an answer (server.timestamps.iso_utc).
Timestamp = Annotated[str, Field(description="ISO 8601 UTC", examples=["2026-12-02T05:09:21Z"])]


def ruled(base: type, check: Callable[[Any, str], Any], json_schema: dict, nullable: bool = False):
    """A `base` field checked by `check(value, field_name)` (a gan_core.rules-style validator
    whose ValueError message names the field) and documented by `json_schema`.
    `nullable`: null is also accepted (it means "the default")."""

    def validate(value, info: ValidationInfo):
        if nullable and value is None:
            return None
        return check(value, info.field_name)

    if nullable:
        json_schema = {"anyOf": [json_schema, {"type": "null"}]}
        base = base | None
    return Annotated[base, PlainValidator(validate), WithJsonSchema(json_schema)]


def prefixed(base: type, check: Callable[[Any], Any], json_schema: dict):
    """Like `ruled`, for a checker that does not take the field's name: its message gets
    'field: ' in front."""

    def validate(value, info: ValidationInfo):
        try:
            return check(value)
        except ValueError as exc:
            raise ValueError(f"{info.field_name}: {exc}") from None

    return Annotated[base, PlainValidator(validate), WithJsonSchema(json_schema)]


def whole(low: int, high: int | None = None, nullable: bool = False):
    """A whole number in [low, high] (rules.check_int; bools refused)."""
    schema = {"type": "integer", "minimum": low, **({"maximum": high} if high is not None else {})}
    return ruled(int, lambda value, name: rules.check_int(value, name, low, high), schema, nullable)


def choice(choices: tuple[str, ...]):
    """One of `choices` (rules.check_choice), documented as an enum of the same tuple."""
    return ruled(str, lambda value, name: rules.check_choice(value, choices, name), {"type": "string", "enum": list(choices)})


def _check_text(value, name: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise ValueError(f"{name} must be non-empty text of at most {max_length} characters, got {_short(value)}")
    return value


def text(max_length: int, nullable: bool = False):
    """Non-blank text of at most `max_length` characters."""
    schema = {"type": "string", "minLength": 1, "maxLength": max_length}
    return ruled(str, lambda value, name: _check_text(value, name, max_length), schema, nullable)


# ----------------------------------------------------------------------------- reading a request


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf
        raise ValueError(f"the number {text[:REPR_CHARS]} is too large")
    return value


def _depth_exceeds(value, limit: int) -> bool:
    """True when containers nest deeper than `limit` (iterative: no recursion to exhaust)."""
    todo = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            todo.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def json_body(optional: bool = False) -> dict:
    """The request's JSON object; 400 when it is not one (or is not strict JSON: NaN,
    Infinity, numbers beyond a float, nesting deeper than MAX_JSON_DEPTH), 413 when it is
    over MAX_JSON_BODY_BYTES. `optional`: no body means {}."""
    if optional and not request.content_length and not request.headers.get("Transfer-Encoding"):
        return {}
    if not request.is_json:
        raise bad_request("the body must be JSON (Content-Type: application/json)")
    # Read no more than a JSON body may hold (or the app's own limit, when that is lower).
    request.max_content_length = min(MAX_JSON_BODY_BYTES, request.max_content_length or MAX_JSON_BODY_BYTES)
    raw = request.get_data(cache=True)
    if optional and not raw:
        return {}
    try:
        data = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise bad_request(f"the JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"the body must be JSON (Content-Type: application/json); {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise bad_request("the JSON body must be an object")
    if _depth_exceeds(data, MAX_JSON_DEPTH):
        raise bad_request(f"the JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels)")
    return data


def parse(schema: type[S], body: dict) -> S:
    """`body` as a `schema` instance, or a 422 describing the first problem."""
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        raise invalid_input(describe(schema, exc.errors())) from None


def rule_check(check: Callable, *args, **kwargs):
    """Run a gan_core validator; its ValueError becomes a 422 with the same message."""
    try:
        return check(*args, **kwargs)
    except ValueError as exc:
        raise invalid_input(str(exc)) from None


def field_check(field: str, check: Callable, *args, **kwargs):
    """`rule_check` for a validator whose message does not name the field: 'field: message'."""
    try:
        return check(*args, **kwargs)
    except ValueError as exc:
        raise invalid_input(f"{field}: {exc}") from None


# ----------------------------------------------------------------------------- messages


def describe(schema: type[BaseModel], errors: list[dict]) -> str:
    """One sentence for a list of pydantic errors. Unknown fields come first: a misspelt
    name also explains the 'required' error of the field it was meant to be."""
    extra = [e for e in errors if e["type"] == "extra_forbidden"]
    if extra:
        parent = extra[0]["loc"][:-1]
        names = [str(e["loc"][-1]) for e in extra if e["loc"][:-1] == parent]
        allowed = list(_schema_at(schema, parent).get("properties", {}))
        where = f" in {_path(parent)}" if parent else ""
        return f"unknown field(s){where}: {', '.join(names)} (allowed: {', '.join(allowed)})"
    error = errors[0]
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    where = _path(loc)
    if kind == "value_error":  # a rules check: its message already names the field
        message = str(error["ctx"]["error"])
        return f"{_path(loc[:-1])}: {message}" if len(loc) > 1 else message
    if kind == "missing":
        description = _schema_at(schema, loc[:-1]).get("properties", {}).get(loc[-1], {}).get("description")
        return f"{where} is required" + (f": {description}" if description else "")
    expected = {
        "bool_type": "true or false", "string_type": "text", "int_type": "a whole number",
        "float_type": "a number", "list_type": "a list", "dict_type": "an object",
        "model_type": "an object", "model_attributes_type": "an object",
    }.get(kind)
    if expected:
        return f"{where} must be {expected}, got {_short(value)}"
    if kind == "too_short":
        return f"{where} needs at least {error['ctx']['min_length']} item(s)"
    if kind == "too_long":
        return f"{where} takes at most {error['ctx']['max_length']} item(s)"
    return f"{where}: {error['msg']}"


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the body"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= REPR_CHARS else text[:REPR_CHARS - 3] + "..."


@functools.lru_cache(maxsize=None)
def _json_schema(schema: type[BaseModel]) -> dict:
    return schema.model_json_schema()


def _schema_at(schema: type[BaseModel], loc: tuple) -> dict:
    """The JSON-schema node documenting `loc` (for descriptions and allowed names)."""
    root = _json_schema(schema)
    defs = root.get("$defs", {})

    def plain(node: dict) -> dict:
        while "$ref" in node:
            node = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
        for option in node.get("anyOf", ()):  # Optional[X]: describe X
            if option.get("type") != "null":
                return plain(option)
        return node

    node = plain(root)
    for part in loc:
        node = plain(node.get("items", {}) if isinstance(part, int) else node.get("properties", {}).get(part, {}))
    return node
