"""Continuous delineation errors of the coverage check: a fraction |s| of the one-voxel shell moves, s ~ U(-1, 1).

Known truth: the voxels added or removed are exactly round(|s| x shell size), all in the shell that
``shift_boundary(mask, +-1)`` adds or removes; s = 0 and s = +-1 are the mask and that shift.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from osem_coverage import COVERAGE_SEED, delineation_errors, partial_boundary_move
from scipy import ndimage

from luprrt.calibration import shift_boundary
from luprrt.segments import Segmentation, SegmentTags


def _ellipsoid(shape=(24, 30, 28), centre=(12, 14, 13), radii=(6.0, 9.0, 7.5)) -> np.ndarray:
    z, y, x = np.indices(shape)
    return ((z - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + \
        ((x - centre[2]) / radii[2]) ** 2 <= 1.0


def _shell(mask: np.ndarray, sign: int) -> np.ndarray:
    one = shift_boundary(mask, sign)
    return one & ~mask if sign > 0 else mask & ~one


def test_no_move_keeps_the_mask_and_a_whole_voxel_is_shift_boundary():
    mask = _ellipsoid()
    rng = np.random.default_rng(1)
    assert np.array_equal(partial_boundary_move(mask, 0.0, rng), mask)
    for sign in (1, -1):
        assert np.array_equal(partial_boundary_move(mask, float(sign), rng), shift_boundary(mask, sign))
    speck = np.zeros((7, 7, 7), dtype=bool)
    speck[3, 3, 2:5] = True  # eroded away but for its central voxel, as shift_boundary keeps it
    assert np.array_equal(partial_boundary_move(speck, -1.0, rng), shift_boundary(speck, -1))
    with pytest.raises(ValueError, match="within one voxel"):
        partial_boundary_move(mask, 1.5, rng)


def test_the_moved_voxels_are_round_s_times_the_shell_and_lie_in_it():
    mask = _ellipsoid()
    shells = {sign: _shell(mask, sign) for sign in (1, -1)}
    assert shells[1].sum() > 500 and shells[-1].sum() > 400
    rng = np.random.default_rng(7)
    for s in rng.uniform(-1.0, 1.0, 100):
        moved = partial_boundary_move(mask, float(s), rng)
        shell = shells[1 if s > 0 else -1]
        added, removed = moved & ~mask, mask & ~moved
        changed = added if s > 0 else removed
        assert not (removed if s > 0 else added).any()  # one direction only
        assert not (changed & ~shell).any()
        assert changed.sum() == round(abs(s) * shell.sum()), s


def test_the_same_seed_moves_the_same_voxels_and_another_seed_others():
    mask = _ellipsoid()
    first = partial_boundary_move(mask, 0.4, np.random.default_rng([COVERAGE_SEED, 3]))
    again = partial_boundary_move(mask, 0.4, np.random.default_rng([COVERAGE_SEED, 3]))
    other = partial_boundary_move(mask, 0.4, np.random.default_rng([COVERAGE_SEED, 4]))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other) and other.sum() == first.sum()


def test_the_moved_part_of_the_shell_is_one_coherent_patch_not_scattered_voxels():
    """Half the shell chosen: at random a chosen voxel's shell neighbours would be chosen half the time."""
    mask = _ellipsoid()
    shell = _shell(mask, 1)
    together = []
    for seed in range(5):
        chosen = partial_boundary_move(mask, 0.5, np.random.default_rng(seed)) & ~mask
        # Shell neighbours (26-connected) of each chosen voxel, and how many of them are chosen too.
        kernel = np.ones((3, 3, 3))
        kernel[1, 1, 1] = 0
        chosen_neighbours = ndimage.convolve(chosen.astype(float), kernel, mode="constant")[chosen]
        shell_neighbours = ndimage.convolve(shell.astype(float), kernel, mode="constant")[chosen]
        together.append(chosen_neighbours.sum() / shell_neighbours.sum())
    assert min(together) > 0.75, together


def _segmentation() -> tuple[Segmentation, dict]:
    """A liver, a kidney and a lesion facing it across one voxel (x = 12: grown, they meet there)."""
    reference = sitk.Image(40, 32, 28, sitk.sitkUInt8)
    reference.SetSpacing((4.0, 4.0, 4.0))
    segmentation = Segmentation.empty_like(reference)
    z, y, x = np.indices((28, 32, 40))
    masks = {"liver": (z >= 2) & (z < 10) & (y >= 2) & (y < 30) & (x >= 2) & (x < 38),
             "kidney": (z >= 14) & (z < 24) & (y >= 4) & (y < 14) & (x >= 6) & (x < 12),
             "lesion": (z >= 16) & (z < 22) & (y >= 6) & (y < 12) & (x >= 13) & (x < 18)}
    ids = {role: segmentation.add_segment(mask, SegmentTags(role, side="right")).segment_id
           for role, mask in masks.items()}
    return segmentation, ids


def test_delineation_errors_move_lesions_and_kidneys_by_a_uniform_fraction_of_a_voxel():
    segmentation, ids = _segmentation()
    original = {role: segmentation.mask_array(i) for role, i in ids.items()}
    draws = []
    for k in range(60):
        moved, shifts = delineation_errors(segmentation, np.random.default_rng([COVERAGE_SEED, k]))
        assert set(shifts) == {ids["kidney"], ids["lesion"]}
        draws += list(shifts.values())
        assert np.array_equal(moved.mask_array(ids["liver"]), original["liver"])
        for role in ("kidney", "lesion"):
            s = shifts[ids[role]]
            shell = _shell(original[role], 1 if s > 0 else -1)
            now = moved.mask_array(ids[role])
            change = (now & ~original[role]) | (original[role] & ~now)
            assert not (change & ~shell).any()
            if role == "lesion" or shifts[ids["lesion"]] <= 0:  # else the grown lesion may take kidney voxels
                assert change.sum() == round(abs(s) * shell.sum()), (k, role, s)
    # s ~ U(-1, 1): mean 0 (SD 1 / sqrt(3 n)), variance 1/3 (SD sqrt((1/5 - 1/9) / n)).
    n = len(draws)
    assert all(-1.0 < s < 1.0 for s in draws)
    assert abs(np.mean(draws)) < 4.0 / math.sqrt(3.0 * n)
    assert abs(np.mean(np.square(draws)) - 1.0 / 3.0) < 4.0 * math.sqrt((1 / 5 - 1 / 9) / n)


def test_where_a_grown_lesion_meets_a_grown_kidney_the_lesion_keeps_the_voxel_and_a_seed_repeats():
    segmentation, ids = _segmentation()
    kidney, lesion = (segmentation.mask_array(ids[r]) for r in ("kidney", "lesion"))
    kidney_shell, lesion_shell = _shell(kidney, 1), _shell(lesion, 1)
    assert (kidney_shell & lesion_shell).sum() == 36  # the 6 x 6 voxels of the plane x = 12
    seed = next(k for k in range(200)
                if min(delineation_errors(segmentation, np.random.default_rng([COVERAGE_SEED, k]))[1].values()) > 0.9)
    moved, shifts = delineation_errors(segmentation, np.random.default_rng([COVERAGE_SEED, seed]))
    again, shifts_again = delineation_errors(segmentation, np.random.default_rng([COVERAGE_SEED, seed]))
    assert shifts == shifts_again
    for i in ids.values():
        assert np.array_equal(moved.mask_array(i), again.mask_array(i))
    # The moved outlines share one new layer: a voxel belongs to one of them.
    assert moved.segment(ids["kidney"]).layer == moved.segment(ids["lesion"]).layer == len(moved.layers) - 1
    grown_kidney, grown_lesion = moved.mask_array(ids["kidney"]), moved.mask_array(ids["lesion"])
    # The lesion keeps its whole move; the kidney loses to it what both chose in the shared plane.
    assert (grown_lesion & ~lesion).sum() == round(shifts[ids["lesion"]] * lesion_shell.sum())
    own_move = kidney.sum() + round(shifts[ids["kidney"]] * kidney_shell.sum())
    taken = (grown_lesion & kidney_shell).sum()
    assert 0 < taken <= 36
    assert own_move - taken <= grown_kidney.sum() < own_move
