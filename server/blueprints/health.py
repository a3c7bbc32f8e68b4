"""GET /api/v1/health: liveness and which device training uses. The one route without auth."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .. import __version__
from ..state import current_state

bp = Blueprint("health", __name__)


@bp.get("/api/v1/health")
def health():
    state = current_state()
    return jsonify({"status": "ok", "version": __version__, "device": state.device, "device_name": state.device_name})


OPENAPI_PATHS = {
    "/api/v1/health": {
        "get": {
            "summary": "Server liveness, version and compute device",
            "security": [],
            "responses": {
                "200": {
                    "description": "The server is up",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["status", "version", "device", "device_name"],
                        "properties": {
                            "status": {"type": "string", "enum": ["ok"]},
                            "version": {"type": "string"},
                            "device": {"type": "string", "examples": ["cpu", "cuda:0"]},
                            "device_name": {"type": "string"},
                        },
                    }}},
                }
            },
        }
    }
}
