"""Generation (seeds -> PNG/zip) from job snapshots and base models, and what it shares
with walks: the loaded-model cache and the per-device lock."""
