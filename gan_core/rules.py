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
# Training processes of one job (`gpus`: one per GPU; on a CPU server, gloo processes); "all":
# every GPU the server was given.
MAX_TRAIN_PROCESSES = 64
ALL_GPUS = "all"
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
# The latent-space explorer (gan_core.explore): an N x N grid of neighbours of a centre
# latent. 8 x 8 = 64 images bounds one request like SEEDS_PER_REQUEST does.
EXPLORE_MIN_GRID, EXPLORE_MAX_GRID, EXPLORE_DEFAULT_GRID = 2, 8, 3
# Variation distance as a fraction of a right angle between the centre z and a neighbour:
# 0 = the centre itself, 1 = as unrelated as two random seeds.
EXPLORE_MIN_DISTANCE, EXPLORE_MAX_DISTANCE, EXPLORE_DEFAULT_DISTANCE = 0.0, 1.0, 0.3
EXPLORE_IMAGES = ("both", "grid", "cells")  # which PNGs an explore answer carries
MAX_SIZE_MULTIPLIER = 8  # generate/walk images up to 8x the model's side (64x the pixels and memory)

# ----------------------------------------------------------------------------- semantic directions (SeFa)

# Which synthesis layers a direction edits. A layer (a w index) belongs to the resolution of
# the highest-resolution layer reading it; the bands are the usual StyleGAN split (coarse:
# pose and shape, middle: features, fine: colour and texture). A model under 64 px has too
# few resolutions for these bands: its resolutions are split into three nearly equal runs
# instead (coarse gets the extra ones), so each range still holds layers (gan_core.directions).
DIRECTION_RANGES = ("all", "coarse", "middle", "fine")
DIRECTION_RANGE_RESOLUTIONS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, None)}
MAX_DIRECTIONS = 16  # directions per range of a model (the top eigenvectors)
DEFAULT_DIRECTIONS = 8
# An amount moves w by that many units along a unit-length direction (w's own components
# are of order 1): +-3..10 is a visible edit, beyond 100 the image is noise.
MAX_DIRECTION_AMOUNT = 100.0
MAX_WALK_DIRECTIONS = 16  # directions one walk may animate
PREVIEW_STEPS, MAX_PREVIEW_STEPS = 5, 9  # images in a direction's preview strip: -a .. +a
DEFAULT_PREVIEW_AMOUNT = 5.0
PREVIEW_PSI = 0.7  # the strip's centre image: a typical, well-formed one

# ----------------------------------------------------------------------------- projection (gan_core.project)

# dfeat: the model's own discriminator features + pixel + multi-scale terms (needs D in the
# checkpoint); pixel: the pixel and multi-scale terms alone.
PROJECTION_LOSSES = ("dfeat", "pixel")
MIN_PROJECTION_STEPS, MAX_PROJECTION_STEPS, DEFAULT_PROJECTION_STEPS = 1, 5000, 300
# An image to project, as decoded pixels: large renders pass, a decompression bomb does not
# (it is resized to the model's side anyway).
MAX_PROJECTION_PIXELS = 8192 * 8192


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


def check_explore_grid(value, name: str = "grid") -> int:
    """The explorer's grid side N (N x N cells)."""
    return check_int(value, name, EXPLORE_MIN_GRID, EXPLORE_MAX_GRID)


def check_explore_distance(value, name: str = "distance") -> float:
    """The explorer's variation distance (0 = the centre, 1 = unrelated)."""
    return check_number(value, name, EXPLORE_MIN_DISTANCE, EXPLORE_MAX_DISTANCE)


def check_gpus(value, name: str = "gpus"):
    """How many training processes (GPUs) one job uses: a whole number, or "all"."""
    if value == ALL_GPUS:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TRAIN_PROCESSES:
        raise RuleError(f"{name} must be a whole number from 1 to {MAX_TRAIN_PROCESSES} or {ALL_GPUS!r}, got {value!r}")
    return value


def check_batch_split(batch: int, processes: int, name: str = "batch") -> int:
    """The global batch must split evenly over the processes, and each share must fill whole
    minibatch-std groups of 4 (or be smaller than 4). Returns the per-process batch."""
    if batch % processes:
        raise RuleError(f"{name} {batch} cannot be split evenly over {processes} GPUs (training processes); "
                        f"use a multiple of {processes}")
    share = batch // processes
    if share % min(4, share):
        raise RuleError(f"{name} per GPU ({share}) must be a multiple of 4 (the minibatch-std group) or smaller than 4")
    return share


def check_size_multiplier(value, name: str = "size multiplier") -> int:
    """How many times the training resolution a seamless texture is made (1 = as trained)."""
    return check_int(value, name, 1, MAX_SIZE_MULTIPLIER)


def enlarged_limit(limit: int, size_multiplier: int) -> int:
    """A per-request image limit at a size multiplier: an N-times enlarged image has N^2 times
    the pixels (memory, time, disk), so it counts N^2 times (at least one image is allowed)."""
    return max(1, limit // (size_multiplier * size_multiplier))


def check_enlarged_count(count: int, limit: int, size_multiplier: int, what: str) -> int:
    """`count` images within `limit` once each counts size_multiplier^2 times."""
    allowed = enlarged_limit(limit, size_multiplier)
    if count > allowed:
        raise RuleError(f"at most {allowed} {what} at size multiplier {size_multiplier} (each image has "
                        f"{size_multiplier * size_multiplier}x the pixels; {limit} at size 1), asked for {count}")
    return count


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


def check_direction_range(value, name: str = "layers") -> str:
    """A direction layer range: all, coarse, middle or fine."""
    return check_choice(value, DIRECTION_RANGES, name)


def check_direction_count(value, name: str = "k") -> int:
    """How many directions of a range to list (the top ones)."""
    return check_int(value, name, 1, MAX_DIRECTIONS)


def check_direction_amount(value, name: str = "amount") -> float:
    """How far to move along a unit direction, in w units."""
    return check_number(value, name, -MAX_DIRECTION_AMOUNT, MAX_DIRECTION_AMOUNT)


def check_direction_amounts(values, name: str = "amounts") -> list[float]:
    """A non-empty list of direction amounts (one per walk frame); the message names the item."""
    if not isinstance(values, (list, tuple)) or not values:
        raise RuleError(f"{name} must be a non-empty list of numbers, one per frame")
    return [check_direction_amount(v, f"{name}[{i}]") for i, v in enumerate(values)]
