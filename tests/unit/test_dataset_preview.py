"""The preview contact sheet: a bounded, seeded, whole-dataset sample of thumbnails."""

from __future__ import annotations

import numpy as np
import pytest

from gan_core.data.preview import ThumbnailReservoir, contact_sheet


def thumbs_for(seed: int, n: int) -> list[int]:
    res = ThumbnailReservoir(capacity=64, seed=seed)
    for i in range(n):
        res.offer(i, np.array([i]))  # the "thumbnail" carries its index, to see which were kept
    return [int(t[0]) for t in res.thumbnails()]


def test_reservoir_is_bounded_spread_and_deterministic():
    picked = thumbs_for(0, 1000)
    assert len(picked) == 64
    assert picked == sorted(picked) and max(picked) > 500  # in order, from the whole stream
    assert thumbs_for(0, 1000) == picked and thumbs_for(1, 1000) != picked
    assert thumbs_for(0, 10) == list(range(10))  # fewer than capacity: all, in order


def test_contact_sheet_layout():
    sheet = contact_sheet([np.full((8, 8, 3), 200, np.uint8)] * 10, gap=2)
    assert sheet.size == (4 * 8 + 5 * 2, 3 * 8 + 4 * 2)  # 4 columns, 3 rows
    assert sheet.getpixel((2, 2)) == (200, 200, 200) and sheet.getpixel((0, 0)) == (32, 32, 32)
    with pytest.raises(ValueError):
        contact_sheet([])
