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
# POST /jobs "gpus": training processes of one job (0 in the UI: "all", every GPU of the server)
MAX_TRAIN_PROCESSES = 64
# POST /jobs "precision": the dtype of the networks' reduced-precision blocks
PRECISIONS = (
    ("auto", "Auto", "fp16 on a GPU, fp32 on the CPU"),
    ("fp32", "fp32", "Full precision everywhere: slowest, exact"),
    ("fp16", "fp16", "Half precision in the top resolutions (GPU only)"),
    ("bf16", "bf16", "bfloat16 in the top resolutions"),
)

# POST /generate and POST /walks "psi", "noise_mode", "seeds"
PSI_MIN, PSI_MAX = -2.0, 2.0
# Always constant noise: the same seed gives the same image every time it is generated.
NOISE_MODE = "const"
SEEDS_PER_REQUEST = 64  # Generate > Count goes up to this
# Seeds the UI offers (a signed 32-bit int property); seed + Count - 1 stays below the server's 2**32.
MAX_SEED = 2 ** 31 - 1
# POST /generate and POST /walks "size_multiplier": images up to this many times the model's side
MAX_SIZE_MULTIPLIER = 8

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

# POST /explore "grid" (N x N cells) and "distance" (0 = the centre, 1 = unrelated)
EXPLORE_MIN_GRID, EXPLORE_MAX_GRID = 2, 8
EXPLORE_MAX_DISTANCE = 1.0

# GET /models/{id}/directions "layers", "k"; POST /walks "directions" (amounts per frame)
DIRECTION_RANGES = (
    ("all", "All layers", "Directions over every layer"),
    ("coarse", "Coarse", "Pose and shape (4-8 px layers)"),
    ("middle", "Middle", "Features (16-32 px layers)"),
    ("fine", "Fine", "Colour and texture (64 px and up)"),
)
MAX_DIRECTIONS, DEFAULT_DIRECTIONS = 16, 8
MAX_DIRECTION_AMOUNT = 100.0  # |amount| on any frame
MAX_WALK_DIRECTIONS = 16  # directions that move in one walk
DEFAULT_PREVIEW_AMOUNT = 5.0  # a preview strip spans -amount .. +amount
PREVIEW_PSI = 0.7

# POST /projections "steps", "loss" (tests/unit/test_project.py checks them against the rules)
MIN_PROJECTION_STEPS, MAX_PROJECTION_STEPS, DEFAULT_PROJECTION_STEPS = 1, 5000, 300
# A waypoint's style-mix crossover layer: the server checks it against the model's layers
# (18 at 1024 px); the UI stops at the largest StyleGAN2 has (4096 px: 22).
MAX_MIX_LAYER = 22
PROJECTION_LOSSES = (
    ("dfeat", "Discriminator features", "The model's own discriminator features + pixel terms (falls back to "
                                        "pixel for a model without a discriminator)"),
    ("pixel", "Pixels", "Pixel and multi-scale pixel terms only"),
)

# -- the add-on's own choices (nothing the server checks) ---------------------------------

# A walk along one waypoint is N copies of one image: the add-on asks for two, though the
# server would accept one.
MIN_WALK_WAYPOINTS = 2

# Dataset render defaults. Render Dataset on the default cube, headless Blender 5.0 on a
# 2-core CPU, 256 px: Cycles at 16 samples 1.9 s a view (64 views: 2 min), at the scene's
# 4096 adaptive samples 4.6 s (5 min); EEVEE without a GPU (software OpenGL) 9.9 s at 16
# samples (11 min) but 36.9 s at its default 64 (39 min). The sample count decides the time.
DEFAULT_VIEW_COUNT = 64
DEFAULT_RENDER_SIZE = 256
DEFAULT_RENDER_SAMPLES = 16  # 0 keeps the scene's own sample count

# Following training: poll every POLL_INTERVAL_S while a job runs; after a failed poll wait
# twice as long each time, up to POLL_MAX_WAIT_S, so a server that is down costs nothing.
POLL_INTERVAL_S = 2.0
POLL_MAX_WAIT_S = 30.0
