"""`latent-studio dataset build|info`: make a training-ready dataset zip."""

from ._pending import not_yet_available


def register(subparsers) -> None:
    p = subparsers.add_parser("dataset", help="build or inspect a dataset zip")
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    sub.required = True
    for name, helptext in (("build", "build a dataset zip from images or a video"), ("info", "describe a dataset zip")):
        sp = sub.add_parser(name, help=helptext)
        sp.set_defaults(func=not_yet_available("datasets", "datasets"))
