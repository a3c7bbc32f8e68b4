"""JSON errors everywhere: `{"error": {"code", "message"}}`, never an HTML page or a traceback."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Stable snake_case codes for the HTTP errors Werkzeug raises itself (routing, body limits).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    500: "internal_error",
}


class ApiError(Exception):
    """An error answer: raise it from any request handler."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        headers = {}
        if status == 405 and exc.valid_methods:
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return error_response(status, HTTP_CODES.get(status, f"http_{status}"), exc.description or exc.name, headers)

    @app.errorhandler(ValueError)
    def _value_error(exc: ValueError):
        # Our user-facing errors are ValueError subclasses with messages written for users.
        return error_response(422, "invalid_input", str(exc) or exc.__class__.__name__)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):  # Flask routes these here when no closer handler exists
            return _http_error(exc)
        log.exception("unhandled error in request")
        return error_response(500, "internal_error", "internal server error (details are in the server log)")
