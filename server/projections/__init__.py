"""Projections: an image -> the latent that reproduces it (gan_core.project), as a job-like
resource that runs in the background.

routes (HTTP + init_app), schemas (bodies), store (SQLite rows and the files) and runner
(the background thread, one projection at a time).
"""
