"""Latent walks: waypoints -> a frame sequence, rendered in the background.

routes (HTTP + init_app), schemas (bodies), store (SQLite rows and the frame files) and
runner (the background renderer).
"""
