"""Camera poses for orbit dataset renders: plain maths, no bpy."""

from __future__ import annotations

import math
import random

# Golden-ratio steps spread the elevations of evenly spaced views without repeating a pattern.
GOLDEN = 0.6180339887498949


class PoseError(ValueError):
    pass


def orbit_poses(count, az_min, az_max, el_min, el_max, spacing="EVEN", seed=0, jitter=0.0):
    """[(azimuth, elevation, distance_factor)] in radians for `count` views."""
    if count < 1:
        raise PoseError("The number of views must be at least 1")
    if el_min > el_max:
        el_min, el_max = el_max, el_min
    rng = random.Random(seed)
    span = az_max - az_min
    full_circle = abs(abs(span) - 2 * math.pi) < 1e-4
    poses = []
    for i in range(count):
        if spacing == "RANDOM":
            az = az_min + span * rng.random()
            # uniform on the sphere band between the two elevations
            s0, s1 = math.sin(el_min), math.sin(el_max)
            el = math.asin(s0 + (s1 - s0) * rng.random())
        else:
            if full_circle or count == 1:
                az = az_min + span * i / count  # the last view must not repeat the first
            else:
                az = az_min + span * i / (count - 1)
            frac = 0.5 if count == 1 else (i * GOLDEN) % 1.0
            el = el_min + (el_max - el_min) * frac
        factor = 1.0 + (rng.uniform(-jitter, jitter) if jitter > 0 else 0.0)
        poses.append((az, el, factor))
    return poses
