"""Generation and latent walks from job snapshots and base models."""
