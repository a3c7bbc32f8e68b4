"""What Apply to Material builds around the image, as plain data (no bpy).

`addon/materials.py` turns a `MaterialOptions` into nodes; everything that can be wrong
with the options, and which nodes they need, is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Image Texture projections the add-on offers: the mesh's UV map, or box projection for
# meshes without good UVs (the texture is projected along the three axes and blended).
PROJECTIONS = (
    ("UV", "UV map", "The image follows the mesh's UV map"),
    ("BOX", "Box", "Projected from six sides: for meshes without good UVs"),
)
# The coordinates a box projection uses.
BOX_COORDINATES = (
    ("OBJECT", "Object", "Object space: the same texel size on every side, moves with the object"),
    ("GENERATED", "Generated", "The object's bounds as 0..1: one image across each side of its box"),
)
_COORDINATE_OUTPUTS = {"UV": "UV", "OBJECT": "Object", "GENERATED": "Generated"}  # Texture Coordinate outputs

BUMP_STRENGTH_DEFAULT = 0.3
SCALE_MIN, SCALE_MAX = 0.001, 1000.0


class MaterialOptionsError(ValueError):
    pass


def _choice(value, choices, name):
    allowed = [c[0] for c in choices]
    if value not in allowed:
        raise MaterialOptionsError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _number(value, name, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise MaterialOptionsError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class MaterialOptions:
    """bump: a Bump node fed by the image's luminance drives the BSDF's Normal, at
    `bump_strength`; scale: how many times the image repeats per unit of its coordinates
    (1: once); projection "BOX" with `box_coordinates` and `box_blend` (0: hard seams
    between the sides, 1: fully blended)."""

    bump: bool = False
    bump_strength: float = BUMP_STRENGTH_DEFAULT
    scale: float = 1.0
    projection: str = "UV"
    box_coordinates: str = "OBJECT"
    box_blend: float = 0.2

    def __post_init__(self):
        _number(self.bump_strength, "Bump strength", 0.0, 1.0)
        _number(self.scale, "Scale", SCALE_MIN, SCALE_MAX)
        _choice(self.projection, PROJECTIONS, "Projection")
        _choice(self.box_coordinates, BOX_COORDINATES, "Box coordinates")
        _number(self.box_blend, "Box blend", 0.0, 1.0)

    @property
    def needs_coordinates(self):
        """True when the image needs its own Texture Coordinate -> Mapping nodes (the
        Image Texture's implicit UV input does for plain UV at scale 1)."""
        return self.scale != 1.0 or self.projection == "BOX"

    @property
    def coordinate_output(self):
        """The Texture Coordinate output that feeds the Mapping node."""
        return _COORDINATE_OUTPUTS["UV" if self.projection == "UV" else self.box_coordinates]

    @property
    def image_projection(self):
        """The Image Texture node's `projection`."""
        return "BOX" if self.projection == "BOX" else "FLAT"

    def summary(self):
        """The options in words, for the report ("" when there is nothing besides Base Color)."""
        parts = []
        if self.bump:
            parts.append(f"bump {self.bump_strength:g}")
        if self.scale != 1.0:
            parts.append(f"scale {self.scale:g}")
        if self.projection == "BOX":
            parts.append(f"box projection ({self.box_coordinates.lower()} coordinates, blend {self.box_blend:g})")
        return ", ".join(parts)


def sequence_timing(frame_start, frame_count, first_number):
    """Image User settings that show file number `first_number` at scene frame `frame_start`
    and one file per frame after it, for `frame_count` frames (Blender shows file number
    scene_frame - frame_start + 1 + frame_offset)."""
    for name, value, low in (("frame_count", frame_count, 1), ("first_number", first_number, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise MaterialOptionsError(f"{name} must be a whole number of at least {low}, not {value!r}")
    return {"frame_start": frame_start, "frame_duration": frame_count, "frame_offset": first_number - 1}
