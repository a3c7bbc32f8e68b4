"""Models resource: what a training job can start from (scratch, checkpoints, imported pickles, finished jobs)."""
