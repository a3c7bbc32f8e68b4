"""Bodies of the walks routes. Field rules come from gan_core.rules; the walk as a whole
(keys on distinct frames, a valid range, loop keys inside it) is checked by gan_core.latent."""

from typing import Literal

from pydantic import Field

from gan_core import rules
from server.generation.schemas import NoiseMode, Psi
from server.models.schemas import ModelRef
from server.validation import Document, Schema, Timestamp, choice, whole
from server.walks.store import STATES


class WaypointIn(Schema):
    """A key of the walk: at `frame`, the image of `seed` or the latent vector `z`."""

    frame: whole(0)
    seed: whole(0, rules.MAX_SEED, nullable=True) = None
    z: list[float] | None = Field(None, description="z_dim numbers for this model (instead of seed)")


class WalkRequest(Schema):
    """POST /walks."""

    model: ModelRef = Field(description="the network to render with")
    waypoints: list[WaypointIn] = Field(min_length=1)
    frame_start: whole(0, nullable=True) = Field(None, description="null: the first waypoint's frame")
    frame_end: whole(0, nullable=True) = Field(None, description=f"null: the last waypoint's frame; "
                                               f"at most {rules.MAX_WALK_FRAMES} frames in all")
    interpolation: choice(rules.INTERPOLATIONS) = "slerp"
    easing: choice(rules.EASINGS) = "linear"
    loop: bool = Field(False, description="after the last key, head back to the first (keys must lie inside the range)")
    psi: Psi = 1.0
    noise_mode: NoiseMode = "const"


class WalkOut(Document):
    id: int
    state: Literal[STATES]
    model: dict = Field(description="the model reference, with a job snapshot's step filled in")
    frames_done: int
    frames_total: int
    frame_start: int
    frame_end: int
    error: str | None
    zip_url: str
    frame_url_template: str = Field(description="replace {frame} with a frame number")
    created_at: Timestamp
    updated_at: Timestamp
