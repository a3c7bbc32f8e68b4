"""Every choice and range the UI offers that the server validates too, in one place.

Enum choices are (value, label, description) triples, ready for a bpy EnumProperty; the
values must be the ones the server accepts (tests/unit/test_addon_limits.py checks them
against gan_core and the server), so a choice in the UI is never a 422 later.
"""


def values(choices):
    """The values of (value, label, description) choices, in order."""
    return tuple(value for value, _label, _description in choices)


# Files the dataset builder reads from an uploaded zip (others are ignored, so not uploaded).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

# POST /datasets/{id}/prepare "crop"
CROP_MODES = (
    ("center", "Center", ""),
    ("none", "Pad", "Pad to square"),
    ("random", "Random", ""),
    ("stretch", "Stretch", ""),
)
# Dataset sides the dataset builder accepts: powers of two from 32 to 1024.
RESOLUTIONS = tuple(2 ** i for i in range(5, 11))

# POST /jobs "preset", "augmentation", "batch"
PRESETS = (
    ("auto", "Auto", ""),
    ("tiny", "Tiny", "For tests"),
    ("small", "Small", ""),
    ("stylegan2", "StyleGAN2", ""),
)
AUGMENTATIONS = (
    ("ada", "Adaptive (ADA)", ""),
    ("fixed", "Fixed", ""),
    ("off", "Off", ""),
)
MAX_BATCH = 256

# POST /generate and POST /walks "psi", "noise_mode", "seeds"
PSI_MIN, PSI_MAX = -2.0, 2.0
# Always constant noise: the same seed gives the same image every time it is generated.
NOISE_MODE = "const"
SEEDS_PER_REQUEST = 64  # Generate > Count goes up to this
# Seeds the UI offers (a signed 32-bit int property); seed + Count - 1 stays below the server's 2**32.
MAX_SEED = 2 ** 31 - 1

# POST /walks "interpolation", "easing"
INTERPOLATIONS = (
    ("slerp", "Spherical", "Slerp in z space"),
    ("lerp", "Linear", "Lerp in w space"),
)
EASINGS = (
    ("linear", "Linear", "Constant speed between waypoints"),
    ("smooth", "Smooth", "Slow in and out at each waypoint"),
    ("smoother", "Smoother", "Even softer stops at waypoints"),
    ("ease-in", "Ease in", "Start slowly"),
    ("ease-out", "Ease out", "End slowly"),
    ("ease-in-out", "Ease in-out", ""),
    ("sine", "Sine", "Sinusoidal ease"),
)
