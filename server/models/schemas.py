"""Bodies of the models routes, and `ModelRef`: the `model` of generate and walk requests."""

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from server.validation import Document, Schema, text, whole


class ModelRef(Schema):
    """Which trained network: {"job_id", "step"?} (a job's snapshot; no step: the newest)
    or {"model_id"} (an id from GET /models; "job:<id>:<step>" is a job snapshot too)."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["job_id"]}, {"required": ["model_id"]}]})

    job_id: whole(0, nullable=True) = None
    step: whole(0, nullable=True) = None
    model_id: text(200, nullable=True) = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.job_id is None) == (self.model_id is None):
            raise ValueError("model needs either job_id (and an optional step) or model_id")
        if self.step is not None and self.job_id is None:
            raise ValueError("model.step goes with job_id; a model_id names its step itself (job:<id>:<step>)")
        return self


class ModelOut(Document):
    id: str
    name: str
    kind: Literal["scratch", "checkpoint", "imported", "job"]
    resolution: int | None
    thumbnail_url: str | None
    provenance: dict | None = Field(None, description="where an imported model came from")


class RefusedFile(Document):
    file: str
    reason: str


class PendingFile(Document):
    file: str


class ModelListing(Document):
    models: list[ModelOut]
    refused: list[RefusedFile] = Field(description="files in the models folder that cannot be used, with the reason")
    pending: list[PendingFile] = Field(description="new pickles, imported by POST /models/rescan")
