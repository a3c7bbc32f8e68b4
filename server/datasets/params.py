"""Validation of POST /datasets/{id}/prepare bodies: every problem is a 422 naming the field."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from gan_core.data.geometry import CROP_MODES  # the builder's own list, so the two never disagree

from ..errors import ApiError

MIN_RESOLUTION, MAX_RESOLUTION = 4, 4096
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class PrepareParams:
    resolution: int = 256
    crop: str = "center"
    background: str = "#000000"
    inflate: tuple[str, ...] = field(default_factory=tuple)
    allow_upscale: bool = False
    labels_from_folders: bool = False

    @classmethod
    def from_json(cls, body) -> "PrepareParams":
        """Validate a request body; every problem is a 422 naming the field."""
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ApiError(422, "invalid_params", "the body must be a JSON object")
        unknown = sorted(set(body) - set(cls.__dataclass_fields__))
        if unknown:
            raise ApiError(422, "invalid_params", f"unknown parameter(s): {', '.join(unknown)}")
        values = dict(body)
        res = values.get("resolution", 256)
        if isinstance(res, bool) or not isinstance(res, int) or not MIN_RESOLUTION <= res <= MAX_RESOLUTION or res & (res - 1):
            raise ApiError(422, "invalid_params", f"resolution must be a power of two between {MIN_RESOLUTION} and {MAX_RESOLUTION}, got {res!r}")
        if values.get("crop", "center") not in CROP_MODES:
            raise ApiError(422, "invalid_params", f"crop must be one of {', '.join(CROP_MODES)}, got {values.get('crop')!r}")
        if not isinstance(values.get("background", "#000000"), str) or not _HEX_COLOUR.match(values.get("background", "#000000")):
            raise ApiError(422, "invalid_params", f"background must be a colour like '#1a2b3c', got {values.get('background')!r}")
        inflate = values.get("inflate", [])
        if isinstance(inflate, str):
            inflate = [inflate]
        if not isinstance(inflate, list) or not all(isinstance(i, str) and i for i in inflate):
            raise ApiError(422, "invalid_params", "inflate must be a list of inflation names")
        from gan_core.data.build import parse_inflate  # the builder's own names and aliases

        try:
            values["inflate"] = tuple(parse_inflate(inflate))
        except ValueError as exc:
            raise ApiError(422, "invalid_params", str(exc)) from exc
        for flag in ("allow_upscale", "labels_from_folders"):
            if not isinstance(values.get(flag, False), bool):
                raise ApiError(422, "invalid_params", f"{flag} must be true or false")
        return cls(**values)

    def to_json(self) -> dict:
        data = asdict(self)
        data["inflate"] = list(self.inflate)
        return data
