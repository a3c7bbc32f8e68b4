"""HTTP routes for training jobs."""
from flask import Blueprint

bp = Blueprint("jobs", __name__, url_prefix="/api/v1")
OPENAPI_PATHS: dict = {}
