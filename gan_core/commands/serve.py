"""`latent-studio serve`: run the companion server."""

from ._pending import not_yet_available


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="run the companion server (HTTP API for Blender)")
    p.set_defaults(func=not_yet_available("the companion server", "server"))
