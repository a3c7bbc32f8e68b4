"""Bodies of the datasets routes: the prepare request (checked by the dataset builder's own
`check_build_options`) and the dataset answer (documentation)."""

from typing import Annotated, Literal

from pydantic import Field, WithJsonSchema

from gan_core import rules
from server.datasets.store import STATES
from server.validation import Document, Schema, Timestamp, ruled


def _names(value, name: str):
    """A list of names or comma-separated text; which names is the builder's business."""
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        return value
    raise ValueError(f"{name} must be a list of names or comma-separated text, got {value!r}")


Inflate = ruled(list[str] | str, _names, {
    "description": "extra variants of every image: a list, or comma-separated text",
    "anyOf": [{"type": "array", "items": {"type": "string", "enum": list(rules.INFLATIONS)}}, {"type": "string"}],
})


class PrepareRequest(Schema):
    """POST /datasets/{id}/prepare. The types are checked here; the values by the builder
    (`gan_core.data.check_build_options`), so a request is refused exactly when the build
    would fail. The documented limits are the builder's constants."""

    resolution: Annotated[int, WithJsonSchema({
        "type": "integer", "minimum": rules.DATASET_MIN_RESOLUTION, "maximum": rules.DATASET_MAX_RESOLUTION,
        "description": "side of the square images: a power of two"})] = rules.DEFAULT_DATASET_RESOLUTION
    crop: Annotated[str, WithJsonSchema({"type": "string", "enum": list(rules.CROP_MODES)})] = "center"
    background: Annotated[str, Field(description="padding colour, #RRGGBB")] = "#000000"
    inflate: Inflate = []
    allow_upscale: bool = False
    labels_from_folders: bool = False

    def build_options(self) -> dict:
        """The keyword arguments of check_build_options / build_dataset these fields set."""
        return {"resolution": self.resolution, "crop": self.crop, "background": self.background, "inflate": self.inflate}


class DatasetOut(Document):
    id: str
    name: str
    state: Literal[STATES]
    progress: float = Field(ge=0, le=1)
    phase: str | None
    error: str | None
    source_bytes: int
    source_images: int
    params: dict | None = Field(description="the prepare request as applied")
    info: dict | None = Field(description="summary of the prepared dataset (counts, resolution, classes)")
    created_at: Timestamp
    updated_at: Timestamp
    image_count: int | None
    resolution: int | None
    report_url: str | None
    preview_url: str | None
