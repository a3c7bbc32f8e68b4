"""Seamless images and the size multiplier in Generate and Bake Walk requests (no bpy).

The panel offers "Model default / On / Off": a checkpoint trained tileable makes seamless
images by itself, so only a choice the user made is sent. Fields left at their defaults
are not sent at all, so the add-on also works with a server that predates them.
"""

from __future__ import annotations

from .limits import MAX_SIZE_MULTIPLIER

MODEL_DEFAULT = "MODEL"
SEAMLESS_CHOICES = (
    (MODEL_DEFAULT, "Model default", "Seamless when the model was trained tileable"),
    ("ON", "On", "Edges wrap around: the image tiles without seams"),
    ("OFF", "Off", "Plain images, even from a model trained tileable"),
)
_SEAMLESS_VALUES = {MODEL_DEFAULT: None, "ON": True, "OFF": False}


def seamless_value(choice):
    """The request's `seamless` for a panel choice: True, False, or None (the model decides)."""
    try:
        return _SEAMLESS_VALUES[choice]
    except KeyError:
        raise ValueError(f"Seamless must be one of {', '.join(_SEAMLESS_VALUES)}, not {choice!r}") from None


def images_allowed(limit, size_multiplier):
    """A per-request image limit at a size multiplier, as the server counts it: an N times
    larger image has N^2 times the pixels, so it counts N^2 times (one is always allowed)."""
    return max(1, limit // (size_multiplier * size_multiplier))


def output_fields(seamless_choice, size_multiplier):
    """The `seamless` and `size_multiplier` fields of a POST /generate or POST /walks body,
    only those that differ from the server's defaults; ValueError (in words) for a choice the
    server would refuse."""
    fields = {}
    value = seamless_value(seamless_choice)
    if value is not None:
        fields["seamless"] = value
    if isinstance(size_multiplier, bool) or not isinstance(size_multiplier, int) \
            or not 1 <= size_multiplier <= MAX_SIZE_MULTIPLIER:
        raise ValueError(f"Size multiplier must be a whole number from 1 to {MAX_SIZE_MULTIPLIER}, "
                         f"not {size_multiplier!r}")
    if size_multiplier > 1:
        if value is False:  # an enlarged image is the tiled input grown: the server makes it seamless only
            raise ValueError(f"Size multiplier {size_multiplier} makes seamless images only: set Seamless to On "
                             "or Model default, or Size to 1")
        fields["size_multiplier"] = size_multiplier
    return fields
