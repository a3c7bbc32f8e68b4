"""The job state machine: every state change goes through `check_transition`.

Keeping the allowed edges in one table means the routes, the scheduler and restart
recovery cannot disagree about what is legal; anything not listed is a 409.
"""

from __future__ import annotations

QUEUED = "queued"
RUNNING = "running"
CANCELLING = "cancelling"
COMPLETED = "completed"
CANCELLED = "cancelled"
FAILED = "failed"
INTERRUPTED = "interrupted"

ALL_STATES = (QUEUED, RUNNING, CANCELLING, COMPLETED, CANCELLED, FAILED, INTERRUPTED)

# Jobs in these states hold (or will hold) a worker process and their dataset.
ACTIVE_STATES = frozenset({QUEUED, RUNNING, CANCELLING, INTERRUPTED})
# A worker process exists (or existed before a crash) for these.
LIVE_STATES = frozenset({RUNNING, CANCELLING})
# Training may be continued from these with POST /jobs/{id}/resume.
RESUMABLE_STATES = frozenset({COMPLETED, CANCELLED, FAILED, INTERRUPTED})
FINAL_STATES = frozenset({COMPLETED, CANCELLED, FAILED})

TRANSITIONS: dict[str, frozenset[str]] = {
    # A queued job can be cancelled before it ever starts (nothing to snapshot).
    QUEUED: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({COMPLETED, CANCELLING, CANCELLED, FAILED, INTERRUPTED}),
    # While cancelling the worker may still finish its last step normally, crash,
    # or die with the server; all three are real outcomes, so all are recorded.
    CANCELLING: frozenset({CANCELLED, COMPLETED, FAILED, INTERRUPTED}),
    INTERRUPTED: frozenset({QUEUED}),
    COMPLETED: frozenset({QUEUED}),
    CANCELLED: frozenset({QUEUED}),
    FAILED: frozenset({QUEUED}),
}


class IllegalTransition(Exception):
    """Raised for an edge that is not in TRANSITIONS; routes turn it into a 409."""

    def __init__(self, current: str, target: str):
        self.current, self.target = current, target
        super().__init__(f"a job in state '{current}' cannot become '{target}'")


def is_allowed(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def check_transition(current: str, target: str) -> None:
    if current not in TRANSITIONS:
        raise ValueError(f"unknown job state {current!r}")
    if target not in ALL_STATES:
        raise ValueError(f"unknown job state {target!r}")
    if not is_allowed(current, target):
        raise IllegalTransition(current, target)


def to_api_error(exc: IllegalTransition):
    """The HTTP form of an illegal transition (imported lazily: no Flask in the worker)."""
    from server.errors import ApiError

    return ApiError(409, "illegal_state_transition", str(exc))
