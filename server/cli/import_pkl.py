"""`latent-studio import-pkl`: safely import a StyleGAN2-ADA network pickle as a base model."""

from __future__ import annotations

from pathlib import Path

from server.config import default_data_dir


def default_models_dir() -> Path:
    """The server's models folder: $LATENT_STUDIO_DATA/models, else ~/.latent-studio/models."""
    return default_data_dir() / "models"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import-pkl",
        help="import a StyleGAN2-ADA .pkl as a base model",
        description=(
            "Read a StyleGAN2-ADA network snapshot (.pkl) without running any code from it, and write "
            "it to the models folder as a Latent Studio checkpoint (.safetensors) with a thumbnail. "
            "NVIDIA's own pretrained pickles are licensed for non-commercial use only."
        ),
    )
    p.add_argument("pkl", metavar="FILE.pkl", help="the network snapshot to import")
    p.add_argument("--name", default=None, help="model name (default: the file name without .pkl)")
    p.add_argument("-o", "--output", metavar="DIR", default=None,
                   help="models folder to write into (default: the server's, $LATENT_STUDIO_DATA/models, "
                        "else ~/.latent-studio/models)")
    p.set_defaults(func=run)


def run(args) -> int:
    from gan_core.models.pickle_import import LICENCE_NOTE, import_pickle

    pkl = Path(args.pkl).expanduser()
    if not pkl.is_file():
        raise FileNotFoundError(f"no such file: {pkl}")
    models_dir = Path(args.output).expanduser() if args.output else default_models_dir()
    target = import_pickle(pkl, models_dir, name=args.name)
    print(f"imported {pkl.name} -> {target}")
    print(f"thumbnail: {target.with_name(target.stem + '.thumb.png')}")
    print(f"note: {LICENCE_NOTE}")
    return 0
