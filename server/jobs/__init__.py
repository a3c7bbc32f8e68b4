"""Training jobs: persistent queue, one worker process per job, restart recovery."""


def init_jobs(app):  # replaced below once the store/scheduler exist
    return None
