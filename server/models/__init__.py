"""Base models: the library listing (scratch, checkpoints and imported pickles in
data_dir/models, finished jobs' snapshots) and what a request's `model` refers to."""
