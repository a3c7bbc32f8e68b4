"""Sub-commands of the `latent-studio` CLI, one module each (see gan_core.cli)."""
