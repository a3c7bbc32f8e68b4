"""Training jobs: persistent queue, one worker process per job, restart recovery.

routes (HTTP + init_app), schemas (bodies), store (SQLite rows), states (the state
machine), scheduler (the queue, in the server) and worker (the training process).
"""
