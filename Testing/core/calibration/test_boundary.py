"""Boundary moves of +-1 voxel: a box grows or shrinks by one voxel per face, counted by hand."""

from __future__ import annotations

import numpy as np

from luprrt.calibration import shift_boundary


def test_one_voxel_out_and_in_of_a_box():
    mask = np.zeros((20, 20, 20), dtype=bool)
    mask[5:12, 6:10, 4:15] = True  # 7 x 4 x 11 voxels
    grown = shift_boundary(mask, 1)
    # Face-connected growth: the 9 x 6 x 13 box less its 12 edges' voxels (corners counted in the edges).
    edges = 4 * (7 + 4 + 11)
    assert grown.sum() == 9 * 6 * 13 - edges - 8
    assert shift_boundary(mask, -1).sum() == 5 * 2 * 9
    assert not (shift_boundary(mask, -1) & ~mask).any() and not (mask & ~grown).any()
    assert np.array_equal(shift_boundary(mask, 0), mask)


def test_an_eroded_speck_keeps_one_voxel():
    mask = np.zeros((9, 9, 9), dtype=bool)
    mask[4, 4, 3:6] = True
    assert shift_boundary(mask, -1).sum() == 1
