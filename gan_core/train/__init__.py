"""Training: the loop, its config and snapshots, losses, ADA augmentation, data-parallel helpers and metrics."""
