"""`latent-studio import-pkl`: safely import a StyleGAN2-ADA network pickle."""

from ._pending import not_yet_available


def register(subparsers) -> None:
    p = subparsers.add_parser("import-pkl", help="import a StyleGAN2-ADA .pkl as a base model")
    p.set_defaults(func=not_yet_available("pickle import", "pickle-import"))
