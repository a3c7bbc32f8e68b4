"""GET /api/v1/health: liveness and which device training uses. The one route without auth."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Flask, jsonify
from pydantic import Field

from server import __version__
from server.config import API_PREFIX
from server.openapi import doc
from server.state import ServerState, current_state
from server.validation import Document

bp = Blueprint("health", __name__, url_prefix=API_PREFIX)


class HealthOut(Document):
    status: Literal["ok"]
    version: str
    device: str = Field(examples=["cpu", "cuda:0"])
    device_name: str


@bp.get("/health")
@doc("Server liveness, version and compute device", ok={200: ("The server is up", HealthOut)}, public=True)
def health():
    state = current_state()
    return jsonify({"status": "ok", "version": __version__, "device": state.device, "device_name": state.device_name})


def init_app(app: Flask, state: ServerState) -> None:
    app.register_blueprint(bp)
