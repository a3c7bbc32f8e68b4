"""The OpenAPI 3.1 document, built from the app itself.

Paths, methods and path parameters come from `app.url_map`; each view function carries its
summary and responses (`@doc`); request and response bodies are the pydantic schemas the
routes validate with (`model_json_schema()`). So the document cannot list a route that does
not exist, miss one that does, or describe a body differently from how it is checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from pydantic import BaseModel

from server import __version__
from server.config import API_PREFIX

bp = Blueprint("openapi", __name__, url_prefix=API_PREFIX)

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})  # Flask adds them to every rule
_CONVERTER = re.compile(r"<(?:([a-zA-Z_]+)(?:\([^)]*\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")
_PARAM_TYPES = {"int": "integer", "float": "number"}  # anything else is a string


@dataclass(frozen=True)
class Operation:
    summary: str
    ok: dict                     # status -> (description, content); see `doc`
    body: Any = None             # a Schema class, or a raw requestBody `content` dict
    body_required: bool = True
    errors: tuple[int, ...] = ()
    public: bool = False         # True: no token needed
    query: tuple[dict, ...] = field(default_factory=tuple)


def doc(summary: str, *, ok: dict, body=None, body_required: bool = True, errors: tuple[int, ...] = (),
        public: bool = False, query: tuple[dict, ...] = ()):
    """Describe a view for the OpenAPI document.

    `ok` maps a status to (description, content): content is a pydantic model (JSON of that
    schema), [model] (a JSON array of it), a JSON-schema dict, a media type or a tuple of
    them (files), or None (no body).
    """
    operation = Operation(summary, ok, body, body_required, tuple(errors), public, tuple(query))

    def mark(view):
        view.openapi = operation
        return view

    return mark


def rule_to_openapi_path(rule: str) -> str:
    """Flask's `/jobs/<int:step>` -> OpenAPI's `/jobs/{step}`."""
    return _CONVERTER.sub(r"{\2}", rule)


class _Builder:
    def __init__(self):
        self.schemas: dict[str, dict] = {"Error": ERROR_SCHEMA}

    def ref(self, model: type[BaseModel]) -> dict:
        """Put `model` (and the models it uses) into components; return a $ref to it."""
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in {**schema.pop("$defs", {}), model.__name__: schema}.items():
            if self.schemas.setdefault(name, sub) != sub:
                raise RuntimeError(f"two different schemas are named {name!r}")
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def content(self, content) -> dict:
        if isinstance(content, type) and issubclass(content, BaseModel):
            return {"application/json": {"schema": self.ref(content)}}
        if isinstance(content, list):  # [Model]: a JSON array of it
            return {"application/json": {"schema": {"type": "array", "items": self.ref(content[0])}}}
        if isinstance(content, dict):
            return {"application/json": {"schema": content}}
        media = (content,) if isinstance(content, str) else tuple(content)
        return {m: {} for m in media}

    def operation(self, rule, op: Operation) -> dict:
        out: dict = {"summary": op.summary}
        if op.public:
            out["security"] = []
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": _PARAM_TYPES.get(conv, "string")}}
                  for conv, name in _CONVERTER.findall(rule.rule)]
        params += [{"in": "query", "required": False, **q} for q in op.query]
        if params:
            out["parameters"] = params
        if op.body is not None:
            body = op.body if isinstance(op.body, dict) else self.content(op.body)
            out["requestBody"] = {"required": op.body_required, "content": body}
        responses = {}
        for status, (description, content) in op.ok.items():
            responses[str(status)] = {"description": description, **({"content": self.content(content)} if content else {})}
        for status in op.errors:
            responses[str(status)] = {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        out["responses"] = responses
        return out


def build_openapi(app: Flask) -> dict:
    builder = _Builder()
    paths: dict[str, dict] = {}
    for rule in app.url_map.iter_rules():
        op = getattr(app.view_functions.get(rule.endpoint), "openapi", None)
        if op is None:
            raise RuntimeError(f"route {rule.rule} ({rule.endpoint}) has no OpenAPI description: decorate it with @doc")
        path = paths.setdefault(rule_to_openapi_path(rule.rule), {})
        for method in sorted(rule.methods - IGNORED_METHODS):
            if method.lower() in path:
                raise RuntimeError(f"{method} {rule.rule} is routed twice")
            path[method.lower()] = builder.operation(rule, op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Latent Studio companion server",
            "version": __version__,
            "description": "Train StyleGAN2-ADA models and generate images for Blender. "
            f"All routes but {API_PREFIX}/health need 'Authorization: Bearer <token>'. "
            "Errors are {\"error\": {\"code\", \"message\"}}; times are ISO 8601 UTC text.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": dict(sorted(builder.schemas.items())),
        },
    }


@bp.get("/openapi.json")
@doc("This OpenAPI document", ok={200: ("The OpenAPI 3 document", {"type": "object"})}, errors=(401,))
def openapi_document():
    return jsonify(build_openapi(current_app))


def init_app(app: Flask, state) -> None:
    app.register_blueprint(bp)
