"""The rulebook: every limit and choice a user can set, defined once.

The library's own checks, the server's request checks (which call the validators below
and turn their `RuleError` into a 422 with the same message) and the CLI all read these
names, so the three can never disagree. The add-on cannot import gan_core inside Blender;
its own copy (addon/core/limits.py) is checked against this module by a test.

Pure Python on purpose: importing the rules must not import torch, numpy or Pillow.
"""

from __future__ import annotations

import math
import numbers


class RuleError(ValueError):
    """A value outside the rules; the message names the field and what is allowed."""


# ----------------------------------------------------------------------------- images and datasets

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".gif"})
# A prepared dataset's side: square, a power of two, within what the builder resizes to.
DATASET_MIN_RESOLUTION, DATASET_MAX_RESOLUTION = 32, 1024
DEFAULT_DATASET_RESOLUTION = 256
CROP_MODES = ("center", "none", "random", "stretch")
INFLATIONS = ("flip_h", "flip_v", "rot90", "rot180", "rot270", "zoom")
INFLATION_ALIASES = {"flip": "flip_h", "hflip": "flip_h", "vflip": "flip_v", "mirror": "flip_h"}

# ----------------------------------------------------------------------------- networks and training

NETWORK_MIN_RESOLUTION, NETWORK_MAX_RESOLUTION = 4, 4096
PRESETS = ("tiny", "small", "stylegan2")  # network sizes (gan_core.nn.networks.preset_kwargs)
PRESET_CHOICES = ("auto", *PRESETS)       # auto: small up to 128 px, else stylegan2
AUG_MODES = ("ada", "fixed", "off")
AUGMENT_PIPELINES = ("bgc", "bg", "bgcc")  # which transforms ADA may use (gan_core.train.augment)
MAX_TRAIN_BATCH = 256
# The dtype of the blocks a network marks for reduced precision (its top `num_fp16_res`
# resolutions: 4 in the small and stylegan2 presets, none in tiny); the rest stays fp32.
PRECISIONS = ("fp32", "fp16", "bf16")
PRECISION_CHOICES = ("auto", *PRECISIONS)
# "auto" = the fastest precision known to be stable on the device. CPU: fp32 (exact, and
# bf16 is only faster on CPUs with bf16 instructions). CUDA: fp16, the reference's own
# mixed precision, until GPU measurements (issue 18) show bf16 faster and as stable.
AUTO_PRECISION = {"cpu": "fp32", "cuda": "fp16"}
# fp16 on the CPU has no fast kernels: about 10x slower than fp32 for inference and for a
# training step (benchmarks/bench_precision_cpu.py, docs/BENCHMARKS.md), so the CPU
# refuses it; bf16 runs there (and is faster on CPUs with bf16 instructions).
DEVICE_PRECISIONS = {"cpu": ("fp32", "bf16"), "cuda": PRECISIONS}

# ----------------------------------------------------------------------------- generation and walks

NOISE_MODES = ("const", "random", "none")
PSI_MIN, PSI_MAX = -2.0, 2.0  # beyond this truncation only extrapolates into garbage
MAX_SEED = 2 ** 32 - 1  # numpy's RandomState takes seeds in [0, 2**32 - 1]
MAX_SEEDS_PER_LIST = 10000  # any seed list (CLI): guards against "0-4000000000" filling memory
SEEDS_PER_REQUEST = 64  # one HTTP generate request: bounded time on an HTTP thread
MAX_GENERATE_BATCH = 256
INTERPOLATIONS = ("slerp", "lerp")
EASINGS = ("linear", "smooth", "smoother", "ease-in", "ease-out", "ease-in-out", "sine")
MAX_WALK_FRAMES = 10000


# ----------------------------------------------------------------------------- validators


def is_power_of_two(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0 and value & (value - 1) == 0


def check_resolution(value, name: str = "resolution", *, low: int = NETWORK_MIN_RESOLUTION,
                     high: int = NETWORK_MAX_RESOLUTION) -> int:
    """A power-of-two side in [low, high]."""
    if not is_power_of_two(value) or not low <= value <= high:
        raise RuleError(f"{name} must be a power of two from {low} to {high}, got {value!r}")
    return value


def check_dataset_resolution(value, name: str = "resolution") -> int:
    return check_resolution(value, name, low=DATASET_MIN_RESOLUTION, high=DATASET_MAX_RESOLUTION)


def check_choice(value, choices, name: str):
    if not isinstance(value, str) or value not in choices:
        raise RuleError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def check_int(value, name: str, low: int, high: int | None = None) -> int:
    """A whole number (bools refused) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise RuleError(f"{name} must be a whole number {bound}, got {value!r}")
    return value


def check_number(value, name: str, low: float, high: float) -> float:
    """A finite number (bools refused) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RuleError(f"{name} must be a number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:  # a huge int
        raise RuleError(f"{name} must be from {low} to {high}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise RuleError(f"{name} must be from {low} to {high}, got {value!r}")
    return value


def check_psi(value, name: str = "truncation psi") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RuleError(f"{name} must be a number, got {value!r}")
    hint = f"use {PSI_MIN} to {PSI_MAX} (1 = no truncation, 0.7 = typical, 0 = the average image)"
    try:
        number = float(value)
    except OverflowError:  # a huge int: not worth printing
        raise RuleError(f"{name} is out of range: {hint}") from None
    if not math.isfinite(number):
        raise RuleError(f"{name} must be a number, got {value!r}")
    if not PSI_MIN <= number <= PSI_MAX:
        raise RuleError(f"{name} {value} is out of range: {hint}")
    return number


def check_noise_mode(value, name: str = "noise mode") -> str:
    return check_choice(value, NOISE_MODES, name)


def check_precision(value, device_type: str | None = None, name: str = "precision") -> str:
    """A precision choice. With a device type ("cpu" or "cuda"), "auto" becomes that device's
    default and a precision the device cannot run is refused."""
    check_choice(value, PRECISION_CHOICES, name)
    if device_type is None:
        return value
    if device_type not in AUTO_PRECISION:
        raise RuleError(f"{name}: unknown device type {device_type!r}; use {', '.join(AUTO_PRECISION)}")
    if value == "auto":
        return AUTO_PRECISION[device_type]
    allowed = DEVICE_PRECISIONS[device_type]
    if value not in allowed:
        raise RuleError(f"{name} {value} is not offered on the {device_type.upper()}: without fast {value} kernels "
                        f"it runs many times slower than fp32 there; use {' or '.join(allowed)} (or auto)")
    return value
