"""Bearer-token access control: one secret per data directory, required on every route but health."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from flask import Flask, request

from server.config import API_PREFIX
from server.errors import error_response

PUBLIC_PATHS = frozenset({f"{API_PREFIX}/health"})
MIN_TOKEN_LENGTH = 16


class TokenError(ValueError):
    pass


def check_token_strength(token: str) -> str:
    token = token.strip()
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise TokenError(f"the access token must be at least {MIN_TOKEN_LENGTH} characters without spaces")
    return token


def _write_owner_only(path: Path, text: str) -> None:
    # Create with 0600 from the start (not chmod afterwards) so the secret is never world-readable.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)  # O_CREAT mode is filtered by the umask; make sure of the exact bits
    os.replace(tmp, path)


def load_or_create_token(token_path: Path, explicit: str | None = None) -> str:
    """The active token: `explicit` when given (then saved), else the saved one, else a new one.

    The token file always holds the token the server accepts, so tools (tests, the add-on
    setup) can read it from there.
    """
    token_path = Path(token_path)
    token_path.parent.mkdir(parents=True, exist_ok=True)
    if explicit:
        token = check_token_strength(explicit)
        if not token_path.exists() or token_path.read_text(encoding="ascii", errors="replace").strip() != token:
            _write_owner_only(token_path, token + "\n")
        return token
    if token_path.exists():
        if os.name == "posix" and token_path.stat().st_mode & 0o077:
            os.chmod(token_path, 0o600)  # tighten a file someone loosened
        return check_token_strength(token_path.read_text(encoding="ascii", errors="replace"))
    token = secrets.token_urlsafe(32)
    _write_owner_only(token_path, token + "\n")
    return token


def install_auth(app: Flask, token: str) -> None:
    expected = token.encode("utf-8")

    @app.before_request
    def _require_token():
        if request.path in PUBLIC_PATHS:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return error_response(
                401, "unauthorized", "missing access token: send 'Authorization: Bearer <token>' (the token is printed by 'latent-studio serve')",
                {"WWW-Authenticate": 'Bearer realm="latent-studio"'},
            )
        # Constant-time compare so response timing does not reveal how much of a guess matched.
        if not hmac.compare_digest(given.strip().encode("utf-8"), expected):
            return error_response(401, "unauthorized", "wrong access token", {"WWW-Authenticate": 'Bearer realm="latent-studio", error="invalid_token"'})
        return None
