"""HTTP helpers shared by server tests: authorised calls to a live server, and the check of
an API error answer (works on `requests` responses and Flask test-client responses alike)."""

from __future__ import annotations

import requests


def api_get(server, path: str, **kw) -> requests.Response:
    return requests.get(server.api(path), headers=server.headers, timeout=30, **kw)


def api_post(server, path: str, json=None, **kw) -> requests.Response:
    return requests.post(server.api(path), json=json, headers=server.headers, timeout=60, **kw)


def assert_json_error(response, status: int, code: str | None = None, message: str | None = None) -> dict:
    """The answer is `status` with a JSON {"error": {"code", "message"}} (code and a message
    substring checked when given); returns the error object."""
    body_text = response.text if hasattr(response, "text") else response.get_data(as_text=True)
    assert response.status_code == status, body_text
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    body = response.json() if callable(response.json) else response.json  # requests vs Flask test client
    error = body["error"]
    assert set(error) == {"code", "message"} and error["message"], error
    if code:
        assert error["code"] == code, error
    if message:
        assert message in error["message"], error
    return error
