"""Answers without a body."""

from __future__ import annotations

from flask import current_app


def no_content():
    """204 with no Content-Type: there is no body to describe (Flask's default would say text/html)."""
    response = current_app.response_class(status=204)
    del response.headers["Content-Type"]
    return response
