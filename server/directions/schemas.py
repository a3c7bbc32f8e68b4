"""Bodies of the directions routes, and `WalkDirectionIn`: one entry of a walk's `directions`."""

from __future__ import annotations

from pydantic import Field

from gan_core import rules
from server.validation import Document, Schema, ruled, text

Amounts = ruled(list[float], lambda value, name: rules.check_direction_amounts(value, name), {
    "type": "array", "minItems": 1, "maxItems": rules.MAX_WALK_FRAMES,
    "items": {"type": "number", "minimum": -rules.MAX_DIRECTION_AMOUNT, "maximum": rules.MAX_DIRECTION_AMOUNT},
    "description": "one amount per frame of the walk's range, in order (frame_start first)"})


class WalkDirectionIn(Schema):
    """A direction a walk moves along: a model's direction by `id` (GET /models/{id}/directions),
    or an explicit unit `vector` with the `layers` it edits."""

    id: text(40, nullable=True) = Field(None, description="a direction of the walk's model, e.g. 'coarse:0'")
    vector: list[float] | None = Field(None, description="w_dim numbers (instead of id)")
    layers: list[int] | None = Field(None, min_length=2, max_length=2,
                                     description="[start, end) w indices a vector edits (default: every layer); "
                                                 "an id brings its own")
    amounts: Amounts


class DirectionOut(Document):
    id: str = Field(description="'<range>:<rank>', rank 0 the strongest")
    index: int
    range: str
    layers: list[int] = Field(description="[start, end) w indices it edits")
    eigenvalue: float
    vector: list[float] = Field(description="unit length, w_dim numbers")
    preview_url: str = Field(description="a strip of the centre image moved by -a..+a along it")


class DirectionListing(Document):
    model: dict = Field(description="the model reference, with a job snapshot's step filled in")
    layers: str
    num_ws: int
    w_dim: int
    directions: list[DirectionOut]


LAYERS_QUERY = {"name": "layers", "schema": {"type": "string", "enum": list(rules.DIRECTION_RANGES), "default": "all"},
                "description": "which layers the directions edit: all, coarse (4-8 px), middle (16-32), fine (64+)"}
K_QUERY = {"name": "k", "schema": {"type": "integer", "minimum": 1, "maximum": rules.MAX_DIRECTIONS,
                                   "default": rules.DEFAULT_DIRECTIONS}, "description": "how many (the strongest first)"}
PREVIEW_QUERIES = (
    {"name": "seed", "schema": {"type": "integer", "minimum": 0, "maximum": rules.MAX_SEED, "default": 0},
     "description": "the centre image's seed"},
    {"name": "amount", "schema": {"type": "number", "minimum": 0, "maximum": rules.MAX_DIRECTION_AMOUNT,
                                  "default": rules.DEFAULT_PREVIEW_AMOUNT}, "description": "the strip spans -amount..+amount"},
    {"name": "steps", "schema": {"type": "integer", "minimum": 2, "maximum": rules.MAX_PREVIEW_STEPS,
                                 "default": rules.PREVIEW_STEPS}, "description": "images in the strip"},
    {"name": "psi", "schema": {"type": "number", "minimum": rules.PSI_MIN, "maximum": rules.PSI_MAX,
                               "default": rules.PREVIEW_PSI}, "description": "truncation of the centre image"},
)
