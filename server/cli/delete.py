"""`latent-studio delete job|walk|model|dataset ID`: free the disk through the running server.

Deleting goes through the server's API, not the folders, because only the server knows
what is in use (a running job, a rendering walk, a model a queued job starts from): it
answers 409 then, and nothing is removed.
"""

from __future__ import annotations

import os
from pathlib import Path

KINDS = {"job": "jobs", "walk": "walks", "model": "models", "dataset": "datasets"}
DEFAULT_URL = "http://127.0.0.1:7860"


def register(subparsers) -> None:
    p = subparsers.add_parser("delete", help="delete a job (with its run), walk, model or dataset on the server",
                              description=__doc__.split("\n\n", 1)[1])
    p.add_argument("kind", choices=tuple(KINDS), help="what to delete")
    p.add_argument("id", help="its id, as the server lists it (latent-studio data usage shows the largest)")
    p.add_argument("--url", default=DEFAULT_URL, help="the server's address")
    p.add_argument("--token", default=None,
                   help="access token (default: $LATENT_STUDIO_TOKEN, else the token file in --data-dir)")
    p.add_argument("--data-dir", default=None,
                   help="the server's data folder, to read its token (default: $LATENT_STUDIO_DATA, else ~/.latent-studio)")
    p.set_defaults(func=run)


def read_token(args) -> str:
    from server.config import default_data_dir

    if args.token or os.environ.get("LATENT_STUDIO_TOKEN"):
        return args.token or os.environ["LATENT_STUDIO_TOKEN"]
    path = (Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()) / "token"
    try:
        return path.read_text().strip()
    except OSError:
        raise ValueError(f"no token: pass --token, set LATENT_STUDIO_TOKEN, or point --data-dir at the "
                         f"server's data folder (no token file at {path})") from None


def run(args) -> int:
    import requests

    from server.config import API_PREFIX

    url = f"{args.url.rstrip('/').removesuffix(API_PREFIX)}{API_PREFIX}/{KINDS[args.kind]}/{args.id}"
    try:
        resp = requests.delete(url, headers={"Authorization": f"Bearer {read_token(args)}"}, timeout=60)
    except requests.RequestException as exc:
        raise ValueError(f"cannot reach the server at {args.url}: is `latent-studio serve` running? ({exc})") from None
    if resp.status_code in (200, 204):
        print(f"deleted {args.kind} {args.id}")
        return 0
    try:
        message = resp.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {resp.status_code}"
    raise ValueError(f"{args.kind} {args.id} was not deleted: {message}")
