"""The add-on's choices and ranges (addon/core/limits.py) are the ones gan_core's rulebook allows.

The add-on cannot import gan_core inside Blender, so it keeps its own copy; this test is
what keeps the copy true. A choice offered in the UI must never be a 422 from the server.
"""

from __future__ import annotations

from gan_core import rules

from addon.core import limits


def test_dataset_choices():
    assert limits.values(limits.CROP_MODES) == tuple(rules.CROP_MODES)
    assert set(limits.IMAGE_EXTENSIONS) == set(rules.IMAGE_EXTENSIONS)
    res = limits.RESOLUTIONS
    assert (res[0], res[-1]) == (rules.DATASET_MIN_RESOLUTION, rules.DATASET_MAX_RESOLUTION)
    assert all(rules.is_power_of_two(r) for r in res)
    assert list(res) == [res[0] * 2 ** i for i in range(len(res))], "every power of two in the range"


def test_training_choices():
    assert limits.values(limits.PRESETS) == tuple(rules.PRESET_CHOICES)
    assert limits.values(limits.AUGMENTATIONS) == tuple(rules.AUG_MODES)
    assert limits.MAX_BATCH == rules.MAX_TRAIN_BATCH
    assert limits.MAX_TRAIN_PROCESSES == rules.MAX_TRAIN_PROCESSES


def test_generation_and_walk_choices():
    assert (limits.PSI_MIN, limits.PSI_MAX) == (rules.PSI_MIN, rules.PSI_MAX)
    assert limits.NOISE_MODE in rules.NOISE_MODES
    assert limits.SEEDS_PER_REQUEST == rules.SEEDS_PER_REQUEST
    assert limits.MAX_SIZE_MULTIPLIER == rules.MAX_SIZE_MULTIPLIER
    # Generate sends seeds gen_seed .. gen_seed + Count - 1
    assert limits.MAX_SEED + limits.SEEDS_PER_REQUEST - 1 <= rules.MAX_SEED
    assert limits.values(limits.INTERPOLATIONS) == tuple(rules.INTERPOLATIONS)
    assert limits.values(limits.EASINGS) == tuple(rules.EASINGS)


def test_choices_are_well_formed_enum_items():
    for name in ("CROP_MODES", "PRESETS", "AUGMENTATIONS", "INTERPOLATIONS", "EASINGS"):
        choices = getattr(limits, name)
        assert all(len(c) == 3 and all(isinstance(x, str) for x in c) for c in choices), name
        assert len(set(limits.values(choices))) == len(choices), name
