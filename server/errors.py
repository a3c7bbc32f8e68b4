"""JSON errors everywhere: `{"error": {"code", "message"}}`, never an HTML page or a traceback.

The vocabulary. `message` is for people (it names the field or thing and says what is
allowed); `code` is for programs, and is one of:

| status | code                    | when                                                            |
| ------ | ----------------------- | --------------------------------------------------------------- |
| 400    | bad_request             | the body is not what the route reads: not JSON, not a JSON      |
|        |                         | object, broken multipart, no 'file' part, an empty upload       |
| 400    | not_a_zip               | an upload that is not a readable zip                            |
| 401    | unauthorized            | no or wrong bearer token                                        |
| 404    | not_found               | no such route                                                   |
| 404    | <thing>_not_found       | the URL (or generate/walk `model`) names a missing thing:       |
|        |                         | dataset, job, walk, model, snapshot, frame, thumbnail, file,    |
|        |                         | direction, timelapse (a job's time-lapse), chart, projection    |
| 405    | method_not_allowed      | the route exists, the method does not                           |
| 409    | dataset_busy            | the dataset is being prepared                                   |
| 409    | dataset_in_use          | an unfinished training job uses the dataset                     |
| 409    | dataset_not_ready       | the dataset is not prepared (yet)                               |
| 409    | dataset_gone            | a job's dataset was deleted; the job cannot train further       |
| 409    | illegal_state_transition| the job's state does not allow the action                       |
| 409    | walk_not_ready          | the walk has not completed                                      |
| 409    | job_active              | delete: the job is queued, training or stopping; cancel it first|
| 409    | walk_active             | delete: the walk is queued or rendering                         |
| 409    | model_in_use            | delete: an unfinished job or walk uses the model (or snapshot)  |
| 409    | projection_not_ready    | the projection is not done: no reconstruction yet               |
| 409    | projection_active       | delete: the projection is queued or running                     |
| 413    | payload_too_large       | the body is over the server's limit                             |
| 415    | unsupported_media_type  | an upload in a form the server does not read                    |
| 422    | invalid_input           | a well-formed request whose values are wrong                    |
| 422    | unknown_dataset         | a job body names a dataset that does not exist                  |
| 422    | unknown_base_model      | a job body names a base model that does not exist               |
| 422    | <zip refusal>           | an upload refused for its content: unsafe_path, symlink_entry,  |
|        |                         | unsupported_entry, encrypted_entry, duplicate_entry,            |
|        |                         | compression_ratio, overlapping_entries, too_many_entries,       |
|        |                         | zip_too_large, too_many_images, no_images                       |
| 500    | internal_error          | a bug; details are in the server log only                       |
| 503    | server_busy             | generation or walk queue full; retry after `Retry-After` seconds|
| 507    | insufficient_storage    | the server's disk is full; nothing was saved, free space, retry |

Messages never show server paths (server.redact): a path inside the data directory is
shown relative to it, any other absolute path as its last component.
"""

from __future__ import annotations

import logging
import sqlite3

from flask import Flask, current_app, has_app_context, jsonify
from werkzeug.exceptions import HTTPException

from gan_core.fileio import is_disk_full
from server.redact import redact_paths

log = logging.getLogger(__name__)

# Codes for the HTTP errors Werkzeug raises itself (routing, body limits).
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
    503: "server_busy",
    507: "insufficient_storage",
}
RETRY_AFTER_S = 5  # what a full queue asks clients to wait before trying again
DISK_FULL_MESSAGE = "the server's disk is full: nothing was saved; free space on it, then try again"


class ApiError(Exception):
    """An error answer: raise it from any request handler."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def invalid_input(message: str) -> ApiError:
    return ApiError(422, "invalid_input", message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def server_busy(what: str) -> ApiError:
    """503 with Retry-After: a bounded queue is full; the request changed nothing."""
    return ApiError(503, "server_busy", f"the server is busy with other {what}; try again in {RETRY_AFTER_S} seconds",
                    {"Retry-After": str(RETRY_AFTER_S)})


def _data_dir():
    extension = current_app.extensions.get("latent") if has_app_context() else None
    return getattr(getattr(extension, "config", None), "data_dir", None)


def public_text(text):
    """`text` without server paths: inside the data directory relative to it, others cut short."""
    return redact_paths(text, (_data_dir(),))


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    response = jsonify({"error": {"code": code, "message": public_text(message)}})
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
        if is_disk_full(exc) or (isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc)):
            # an upload, a walk request or a database write found no space
            log.error("disk full while answering a request: %s", exc)
            return error_response(507, "insufficient_storage", DISK_FULL_MESSAGE)
        log.exception("unhandled error in request")
        return error_response(500, "internal_error", "internal server error (details are in the server log)")
