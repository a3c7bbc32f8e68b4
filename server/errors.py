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
|        |                         | dataset, job, walk, model, snapshot, frame, thumbnail, file     |
| 405    | method_not_allowed      | the route exists, the method does not                           |
| 409    | dataset_busy            | the dataset is being prepared                                   |
| 409    | dataset_in_use          | an unfinished training job uses the dataset                     |
| 409    | dataset_not_ready       | the dataset is not prepared (yet)                               |
| 409    | dataset_gone            | a job's dataset was deleted; the job cannot train further       |
| 409    | illegal_state_transition| the job's state does not allow the action                       |
| 409    | walk_not_ready          | the walk has not completed                                      |
| 413    | payload_too_large       | the body is over the server's limit                             |
| 415    | unsupported_media_type  | an upload in a form the server does not read                    |
| 422    | invalid_input           | a well-formed request whose values are wrong                    |
| 422    | unknown_dataset         | a job body names a dataset that does not exist                  |
| 422    | unknown_base_model      | a job body names a base model that does not exist               |
| 422    | <zip refusal>           | an upload refused for its content: unsafe_path, symlink_entry,  |
|        |                         | unsupported_entry, encrypted_entry, duplicate_entry,            |
|        |                         | compression_ratio, too_many_entries, zip_too_large,             |
|        |                         | too_many_images, no_images                                      |
| 500    | internal_error          | a bug; details are in the server log only                       |
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

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
}


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
