"""HTTP routes for generation and walks."""
from flask import Blueprint

bp = Blueprint("generation", __name__, url_prefix="/api/v1")
OPENAPI_PATHS: dict = {}
