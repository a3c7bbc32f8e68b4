"""`latent-studio train`: train a StyleGAN2-ADA model on a prepared dataset."""

from ._pending import not_yet_available


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model on a prepared dataset zip")
    p.set_defaults(func=not_yet_available("training", "training"))
