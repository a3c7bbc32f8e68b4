"""`latent-studio generate` and `latent-studio walk`: images and latent walks from a model."""

from ._pending import not_yet_available


def register(subparsers) -> None:
    p = subparsers.add_parser("generate", help="generate images from seeds")
    p.set_defaults(func=not_yet_available("generation", "networks"))
    p = subparsers.add_parser("walk", help="render a latent walk as an image sequence")
    p.set_defaults(func=not_yet_available("latent walks", "networks"))
