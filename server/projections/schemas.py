"""Bodies of the projections routes. Field rules come from gan_core.rules; the image is
checked (decoded) and the model's discriminator looked up by the route."""

from typing import Literal

from pydantic import Field

from gan_core import rules
from server.models.schemas import ModelRef
from server.projections.store import STATES
from server.validation import Document, Schema, Timestamp, choice, ruled, whole


def _check_base64(value, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be base64 text of an image file (PNG, JPEG...), got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} is empty: send the image file as base64 text")
    return value


class ProjectionRequest(Schema):
    """POST /projections: find the latent of `image` in `model`, in the background."""

    model: ModelRef = Field(description="the network to project into")
    image: ruled(str, _check_base64, {"type": "string", "contentEncoding": "base64"}) = Field(
        description="the image file (PNG, JPEG, WebP, BMP or TIFF) as base64 text; any size: the centre "
                    "square is used, resized to the model's side")
    steps: whole(rules.MIN_PROJECTION_STEPS, rules.MAX_PROJECTION_STEPS) = rules.DEFAULT_PROJECTION_STEPS
    w_plus: bool = Field(False, description="one w per layer (W+): closer reconstructions; false: one w for all")
    noise: bool = Field(False, description="also optimise the per-pixel noise (the result's latent does not "
                                           "carry it: walks render with the model's own noise)")
    loss: choice(rules.PROJECTION_LOSSES) = Field("dfeat", description="dfeat: the model's discriminator features "
                                                  "+ pixel + multi-scale terms (a model without a discriminator "
                                                  "falls back to pixel, with a note); pixel: pixel + multi-scale only")
    seed: whole(0, rules.MAX_SEED) = Field(0, description="seeds the optimisation's noise: same inputs, same result")


class ProjectionResultOut(Document):
    w: list[float] | None = Field(description="the latent [w_dim] (null in W+ mode): use it as a walk key's w")
    ws: list[list[float]] = Field(description="the latent per layer [num_ws][w_dim] (in either mode)")
    w_plus: bool
    final_loss: float
    losses: list[float] = Field(description="the reconstruction loss at every step")


class ProjectionOut(Document):
    id: int
    state: Literal[STATES]
    model: dict = Field(description="the model reference, with a job snapshot's step filled in")
    steps: int
    steps_done: int
    progress: float = Field(description="steps_done / steps, 0 to 1")
    loss: float | None = Field(description="the loss at the last reported step (null before the first)")
    loss_kind: Literal[rules.PROJECTION_LOSSES] = Field(description="the loss used (dfeat falls back to pixel "
                                                                    "for a model without a discriminator)")
    w_plus: bool
    noise: bool
    note: str | None
    error: str | None
    result: ProjectionResultOut | None = Field(description="null until the state is done")
    target_url: str = Field(description="the image as compared: cropped and resized to the model")
    reconstruction_url: str = Field(description="the rendered result, once done")
    created_at: Timestamp
    updated_at: Timestamp
