"""Latent Studio companion server (Flask app, SQLite job store, training workers)."""

from gan_core import __version__  # one version for the whole distribution

__all__ = ["__version__"]
