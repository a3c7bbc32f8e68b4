"""Bodies of the walks routes. Field rules come from gan_core.rules; the walk as a whole
(keys on distinct frames, a valid range, loop keys inside it) is checked by gan_core.latent."""

from typing import Literal

from pydantic import Field, model_validator

from gan_core import rules
from server.directions.schemas import WalkDirectionIn
from server.generation.schemas import SEAMLESS_DESCRIPTION, NoiseMode, Psi, SizeMultiplier, check_texture_fields
from server.models.schemas import ModelRef
from server.validation import Document, Schema, Timestamp, choice, ruled, whole
from server.walks.store import STATES


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_w(value, name: str) -> list:
    """[w_dim] numbers or [num_ws][w_dim] rows of numbers; the shape is checked against the
    model by the route (gan_core.latent.key_ws), the form here."""
    if isinstance(value, list) and value and (all(_is_number(v) for v in value) or all(
            isinstance(row, list) and row and all(_is_number(v) for v in row) for row in value)):
        return value
    raise ValueError(f"{name} must be a list of w_dim numbers, or a list of num_ws such lists (one w per layer)")


_NUMBERS = {"type": "array", "items": {"type": "number"}}
# A stored W (one w for every layer) or W+ latent (one per layer), e.g. a projection's result.
Latent = ruled(list, _check_w, {"anyOf": [_NUMBERS, {"type": "array", "items": _NUMBERS}]}, nullable=True)


class MixIn(Schema):
    """Style mixing: the key's layers >= `from_layer` (its finer styles) come from this other
    latent: exactly one of seed, z or w."""

    seed: whole(0, rules.MAX_SEED, nullable=True) = None
    z: list[float] | None = Field(None, description="z_dim numbers")
    w: Latent = Field(None, description="[w_dim] or [num_ws][w_dim] numbers")
    from_layer: whole(0) = Field(description="the first layer taken from this latent: 0 = all of them, "
                                             "num_ws = none; low layers are coarse (pose, shape), high ones fine")


class WaypointIn(Schema):
    """A key of the walk: at `frame`, the image of `seed`, the latent vector `z`, or a stored
    latent `w`; optionally style-mixed. A walk with any `w` key or `mix` runs in W+, where
    every interpolation is a straight line in W (slerp means lerp there)."""

    frame: whole(0)
    seed: whole(0, rules.MAX_SEED, nullable=True) = None
    z: list[float] | None = Field(None, description="z_dim numbers for this model (instead of seed)")
    w: Latent = Field(None, description="a stored latent instead of seed or z: [w_dim] numbers (one w for "
                                        "every layer) or [num_ws][w_dim] (W+), e.g. a projection's result; "
                                        "used as given (psi does not apply)")
    mix: MixIn | None = Field(None, description="style mixing: layers >= from_layer from another latent")


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
    seamless: bool | None = Field(None, description=SEAMLESS_DESCRIPTION)
    size_multiplier: SizeMultiplier = Field(1, description="frames this many times the model's resolution "
                                                           f"(seamless); at size N a walk has at most "
                                                           f"{rules.MAX_WALK_FRAMES} / N^2 frames")
    directions: list[WalkDirectionIn] = Field(default_factory=list, max_length=rules.MAX_WALK_DIRECTIONS,
                                              description="directions to move along, with an amount per frame "
                                                          "(added in W+ after truncation: psi acts on the keys only)")

    @model_validator(mode="after")
    def _texture(self):
        check_texture_fields(self.seamless, self.size_multiplier)
        return self


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
    settings: dict = Field(description="what the walk renders, as stored: waypoints (the keys as the renderer "
                                       "reads them), interpolation, easing, loop, psi, noise_mode, seamless, "
                                       "size_multiplier, and directions [{id, layers, amounts}]")
