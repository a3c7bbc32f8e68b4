"""Server settings: one dataclass, filled from CLI arguments or defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 7860
API_PREFIX = "/api/v1"  # every route lives under it (blueprints use it as url_prefix)


def default_data_dir() -> Path:
    return Path(os.environ.get("LATENT_STUDIO_DATA", "~/.latent-studio")).expanduser()


@dataclass
class ServerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None  # None: loaded from / generated into data_dir/token
    workers: int = 1
    device: str = "auto"
    max_upload_bytes: int = 5 * 10**9
    max_images: int = 25000
    max_zip_entries: int = 50000
    max_compression_ratio: float = 200.0
    max_extracted_bytes: int = 20 * 10**9  # declared uncompressed total of an uploaded zip
    max_steps: int = 25000
    # Dataset preparations running at once (each uses a pool of processes); the rest wait, queued.
    max_preparations: int = 1
    # Generate requests running or waiting at once; one more is answered 503 + Retry-After, so
    # generation never occupies more than this many HTTP threads (health and status stay quick).
    generate_queue: int = 4
    # Walks queued or rendering at once; one more is answered 503 + Retry-After.
    walk_queue: int = 16

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        for name in ("max_upload_bytes", "max_images", "max_zip_entries", "max_extracted_bytes", "max_steps", "workers",
                     "max_preparations", "generate_queue", "walk_queue"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        if not self.max_compression_ratio > 1:
            raise ValueError(f"max_compression_ratio must be greater than 1, got {self.max_compression_ratio!r}")
        if not 0 <= int(self.port) <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {self.port!r}")

    @classmethod
    def from_args(cls, args) -> "ServerConfig":
        """Build from an argparse namespace; attributes left None fall back to the defaults."""
        fields = cls.__dataclass_fields__
        values = {name: getattr(args, name) for name in fields if getattr(args, name, None) is not None}
        values.setdefault("data_dir", default_data_dir())
        return cls(**values)

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def walks_dir(self) -> Path:
        return self.data_dir / "walks"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "latent-studio.sqlite3"

    @property
    def token_path(self) -> Path:
        return self.data_dir / "token"
