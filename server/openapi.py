"""The OpenAPI 3 document, merged from the OPENAPI_PATHS of every registered routes module.

Each blueprint's module documents its own routes, so the document is kept next to the code;
tests/e2e/test_platform.py checks that the document and app.url_map agree both ways.
"""

from __future__ import annotations

import importlib
import re

from flask import Blueprint, Flask, current_app, jsonify

from . import __version__

bp = Blueprint("openapi", __name__)

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


def error_responses(*statuses: int) -> dict:
    """`responses` entries for error statuses, all with the shared Error schema (helper for routes modules)."""
    return {
        str(status): {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for status in statuses
    }


def json_response(description: str, schema: dict | None = None) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema or {"type": "object"}}}}


def build_openapi(app: Flask) -> dict:
    paths: dict[str, dict] = {}
    for name, blueprint in app.blueprints.items():
        try:
            module = importlib.import_module(blueprint.import_name)
        except ImportError:
            module = None
        documented = getattr(module, "OPENAPI_PATHS", None)
        if documented is None:
            raise RuntimeError(f"blueprint {name!r} ({blueprint.import_name}) exports no OPENAPI_PATHS")
        for path, operations in documented.items():
            merged = paths.setdefault(path, {})
            overlap = set(merged) & set(operations)
            if overlap:
                raise RuntimeError(f"{path} {sorted(overlap)} documented twice (second time by {blueprint.import_name})")
            merged.update(operations)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Latent Studio companion server",
            "version": __version__,
            "description": "Train StyleGAN2-ADA models and generate images for Blender. "
            "All routes but /api/v1/health need 'Authorization: Bearer <token>'.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_SCHEMA},
        },
    }


_CONVERTER = re.compile(r"<(?:[a-zA-Z_]+(?:\([^)]*\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")


def rule_to_openapi_path(rule: str) -> str:
    """Flask's `/jobs/<int:step>` -> OpenAPI's `/jobs/{step}`."""
    return _CONVERTER.sub(r"{\1}", rule)


@bp.get("/api/v1/openapi.json")
def openapi_document():
    return jsonify(build_openapi(current_app))


OPENAPI_PATHS = {
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This OpenAPI document",
            "responses": {"200": json_response("The OpenAPI 3 document"), **error_responses(401)},
        }
    }
}
