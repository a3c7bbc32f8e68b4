"""Bodies of POST /explore. Field limits come from gan_core.rules; the centre's length is
checked against the model by gan_core.explore (a 422 with its message)."""

from pydantic import ConfigDict, Field, model_validator

from gan_core import rules
from server.generation.schemas import NoiseMode, Psi
from server.models.schemas import ModelRef
from server.validation import Document, Schema, choice, ruled, whole

Grid = ruled(int, lambda value, name: rules.check_explore_grid(value, name), {
    "type": "integer", "minimum": rules.EXPLORE_MIN_GRID, "maximum": rules.EXPLORE_MAX_GRID,
    "description": "N: the answer has N x N cells"})
Distance = ruled(float, lambda value, name: rules.check_explore_distance(value, name), {
    "type": "number", "minimum": rules.EXPLORE_MIN_DISTANCE, "maximum": rules.EXPLORE_MAX_DISTANCE,
    "description": "how far the neighbours are: 0 = the centre itself, 1 = as unrelated as two random seeds"})


class Center(Schema):
    """The centre latent: {"seed"} (the image of that seed) or {"z"} (e.g. a picked cell's z)."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["seed"]}, {"required": ["z"]}]})

    seed: whole(0, rules.MAX_SEED, nullable=True) = None
    z: list[float] | None = Field(None, description="z_dim numbers for this model (a cell's z from an earlier answer)")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.seed is None) == (self.z is None):
            raise ValueError("center needs either seed or z")
        return self


class ExploreRequest(Schema):
    """POST /explore."""

    model: ModelRef = Field(description="the network to explore")
    center: Center = Field(description="the latent in the middle of the grid")
    grid: Grid = rules.EXPLORE_DEFAULT_GRID
    distance: Distance = rules.EXPLORE_DEFAULT_DISTANCE
    psi: Psi = 1.0
    seed: whole(0, rules.MAX_SEED) = Field(0, description="the neighbourhood: which random directions the "
                                                           "neighbours lie in")
    noise_mode: NoiseMode = "const"
    seamless: bool | None = Field(None, description="wrap-around padding (tileable cells); null: the model's own "
                                                    "setting")
    images: choice(rules.EXPLORE_IMAGES) = Field("both", description="which PNGs to send: the whole grid, one per "
                                                                    "cell, or both")


class ExploreCell(Document):
    index: int = Field(description="row * grid + col")
    row: int
    col: int
    z: list[float] = Field(description="the cell's z: send it as center.z to explore around this cell")
    w: list[float] = Field(description="the cell's w (truncated with the request's psi): its image is synthesised "
                                       "from exactly this")
    png: str | None = Field(description="the cell's image, PNG as base64 (null unless images is cells or both)")


class ExploreOut(Document):
    model: dict = Field(description="the model reference, with a job snapshot's step filled in")
    grid: int
    distance: float
    psi: float
    seed: int
    noise_mode: str
    seamless: bool = Field(description="whether the cells were rendered tileable")
    resolution: int = Field(description="the side of one cell in pixels")
    center_index: int = Field(description="the cell holding the centre: row (grid-1)//2, column (grid-1)//2")
    grid_png: str | None = Field(description="all cells in one PNG, grid columns, as base64 (null unless images is "
                                             "grid or both)")
    cells: list[ExploreCell]
