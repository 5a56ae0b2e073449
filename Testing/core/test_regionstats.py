"""Region statistics: one-pass results against brute-force per-label references and hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.regionstats import Region, RegionMasks, region_statistics

ENGINES = ["numba", "numpy"]
REL = 1e-9


def brute_force(values: np.ndarray, mask: np.ndarray) -> dict:
    """Per-region reference with plain numpy on a boolean mask (float64, two-pass std)."""
    selected = values[mask].astype(np.float64)
    if selected.size == 0:
        return {"count": 0, "sum": 0.0, "mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    return {"count": selected.size, "sum": selected.sum(), "mean": selected.mean(), "std": selected.std(),
            "min": selected.min(), "max": selected.max()}


def assert_matches(stats, i: int, expected: dict, voxel_volume_ml: float) -> None:
    assert stats.voxel_count[i] == expected["count"]
    assert stats.volume_ml[i] == pytest.approx(expected["count"] * voxel_volume_ml, rel=REL)
    assert stats.sum[i] == pytest.approx(expected["sum"], rel=REL, abs=0.0)
    for key in ("mean", "std", "min", "max"):
        if math.isnan(expected[key]):
            assert math.isnan(getattr(stats, key)[i]), key
        else:
            assert getattr(stats, key)[i] == pytest.approx(expected[key], rel=REL), key


@pytest.fixture(scope="module")
def random_case():
    rng = np.random.default_rng(20240611)
    # Spatially coherent labels (runs along x) plus salt noise, as in real label maps.
    labels = np.repeat(rng.integers(0, 9, size=(24, 20, 6)), 6, axis=2).astype(np.uint16)
    noise = rng.random(labels.shape) < 0.05
    labels[noise] = rng.integers(0, 9, size=noise.sum())
    values = rng.gamma(2.0, 500.0, size=labels.shape).astype(np.float32)
    return values, labels


@pytest.mark.parametrize("engine", ENGINES)
def test_label_statistics_equal_brute_force_reference(random_case, engine):
    values, labels = random_case
    wanted = [3, 1, 8, 0, 11]  # 11 is absent: an empty label
    stats = region_statistics(values, labels, voxel_volume_ml=0.125, label_values=wanted, engine=engine)
    assert stats.label.tolist() == wanted
    for i, label in enumerate(wanted):
        assert_matches(stats, i, brute_force(values, labels == label), 0.125)
    assert stats.total_mbq[1] == pytest.approx(brute_force(values, labels == 1)["sum"] * 0.125 / 1e6, rel=REL)
    empty = wanted.index(11)
    assert stats.voxel_count[empty] == 0 and stats.sum[empty] == 0.0 and stats.volume_ml[empty] == 0.0
    assert math.isnan(stats.mean[empty]) and math.isnan(stats.max[empty])


@pytest.mark.parametrize("engine", ENGINES)
def test_default_labels_are_present_nonzero_labels_ascending(random_case, engine):
    values, labels = random_case
    stats = region_statistics(values, labels, voxel_volume_ml=1.0, engine=engine)
    assert stats.label.tolist() == list(range(1, 9))
    for i, label in enumerate(stats.label):
        assert_matches(stats, i, brute_force(values, labels == label), 1.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_std_is_exact_for_large_offset_small_spread(engine):
    # 1e6 Bq/mL with a spread of ~0.3: a naive sum-of-squares formula loses every digit here.
    rng = np.random.default_rng(3)
    values = 1e6 + rng.random((16, 16, 64))
    values[::3, ::5, ::7] = 3e6  # outliers, some of them first in their run
    labels = np.repeat(rng.integers(1, 4, size=(16, 16, 2)), 32, axis=2)
    stats = region_statistics(values, labels, voxel_volume_ml=1.0, engine=engine)
    for i, label in enumerate(stats.label):
        assert stats.std[i] == pytest.approx(values[labels == label].std(), rel=REL)


@pytest.mark.parametrize("engine", ENGINES)
def test_negative_and_huge_labels_use_the_renumbering_path(engine):
    rng = np.random.default_rng(5)
    labels = rng.choice(np.array([-7, 0, 5, 2**40]), size=(8, 9, 10))
    values = rng.normal(100.0, 20.0, size=labels.shape)
    stats = region_statistics(values, labels, voxel_volume_ml=1.0, engine=engine)
    assert stats.label.tolist() == [-7, 5, 2**40]
    for i, label in enumerate(stats.label):
        assert_matches(stats, i, brute_force(values, labels == label), 1.0)


def test_sitk_inputs_take_voxel_volume_from_spacing():
    labels = np.zeros((10, 10, 10), dtype=np.uint8)
    labels[2:7, 3:8, 1:5] = 4  # 100 voxels
    image = sitk.GetImageFromArray(np.full(labels.shape, 2.5e5, dtype=np.float32))
    image.SetSpacing((2.0, 2.0, 3.0))  # 12 mm^3 = 0.012 mL
    label_image = sitk.GetImageFromArray(labels)
    label_image.CopyInformation(image)
    stats = region_statistics(image, label_image)
    assert stats.label.tolist() == [4]
    assert stats.volume_ml[0] == pytest.approx(1.2, rel=1e-12)
    # 100 voxels x 2.5e5 Bq/mL x 0.012 mL = 3e5 Bq = 0.3 MBq
    assert stats.total_mbq[0] == pytest.approx(0.3, rel=1e-12)
    assert stats.std[0] == 0.0
    row = stats.row(4)
    assert row["mean_bq_per_ml"] == 2.5e5 and row["total_mbq"] == pytest.approx(0.3, rel=1e-12)


def test_weighted_statistics_against_hand_computation():
    values = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0]).reshape(1, 1, 6)
    labels = np.array([1, 1, 1, 1, 2, 2]).reshape(1, 1, 6)
    weights = np.array([1.0, 0.5, 0.25, 0.6, 0.4, 0.2]).reshape(1, 1, 6)
    stats = region_statistics(values, labels, voxel_volume_ml=2.0, weights=weights)
    # Label 1: sum w = 2.35; sum w v = 10 + 10 + 7.5 + 24 = 51.5
    mean1 = 51.5 / 2.35
    var1 = (1.0 * (10 - mean1) ** 2 + 0.5 * (20 - mean1) ** 2 + 0.25 * (30 - mean1) ** 2
            + 0.6 * (40 - mean1) ** 2) / 2.35
    assert stats.volume_ml[0] == pytest.approx(2.35 * 2.0, rel=1e-12)
    assert stats.sum[0] == pytest.approx(51.5, rel=1e-12)
    assert stats.mean[0] == pytest.approx(mean1, rel=1e-12)
    assert stats.std[0] == pytest.approx(math.sqrt(var1), rel=1e-12)
    assert stats.voxel_count[0] == 4
    assert (stats.min[0], stats.max[0]) == (10.0, 40.0)  # voxels with w > 0.5 only: 10 and 40
    # Label 2 has no voxel with w > 0.5: its extrema come from its largest-w voxel (50 at w = 0.4).
    assert stats.mean[1] == pytest.approx((0.4 * 50 + 0.2 * 60) / 0.6, rel=1e-12)
    assert (stats.min[1], stats.max[1]) == (50.0, 50.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_region_masks_overlapping_regions_equal_brute_force(random_case, engine):
    values, labels = random_case
    lobe = labels >= 4
    lesion = (labels == 6) | (labels == 7)
    nontumour = lobe & ~lesion
    sparse = np.flatnonzero(labels.ravel() == 2)
    regions = {"lobe": lobe, "lesion": lesion, "nontumour": nontumour, "sparse": Region(sparse),
               "empty": np.zeros(labels.shape, dtype=bool), "everything": np.ones(labels.shape, dtype=bool)}
    masks = RegionMasks(labels.shape, regions, voxel_volume_ml=0.5)
    stats = masks.statistics(values, engine=engine)
    assert stats.label.tolist() == list(regions)
    dense = {**regions, "sparse": labels == 2}
    for i, name in enumerate(regions):
        assert_matches(stats, i, brute_force(values, dense[name]), 0.5)
    assert masks.volume_ml()["nontumour"] == pytest.approx(nontumour.sum() * 0.5, rel=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_regions_from_a_partition_equal_brute_force(random_case, engine):
    values, labels = random_case
    voxels = np.flatnonzero(labels.ravel())
    pieces = labels.ravel()[voxels]
    definition = {"low": [1, 2, 3], "high": [6, 7, 8], "odd": [1, 3, 5, 7], "none": [42]}
    masks = RegionMasks.from_partition(labels.shape, voxels, pieces, definition, voxel_volume_ml=0.25)
    stats = masks.statistics(values, engine=engine)
    for i, members in enumerate(definition.values()):
        assert_matches(stats, i, brute_force(values, np.isin(labels, members)), 0.25)
    assert masks.volume_ml()["odd"] == pytest.approx(np.isin(labels, [1, 3, 5, 7]).sum() * 0.25)
    with pytest.raises(ValueError, match="piece labels must be positive"):
        RegionMasks.from_partition(labels.shape, [0, 1], [1, 0], {"a": [1]}, voxel_volume_ml=1.0)


def test_partition_pieces_in_any_order_and_members_of_any_iterable():
    # Pieces in long runs (a label map along x, as luprrt.liver.tn builds them) and the same voxels shuffled
    # (runs of one voxel) must give the same regions; members may be arrays, sets, ranges, generators.
    labels = np.zeros((6, 7, 40), dtype=np.uint16)
    labels[1:5, 2:6, 3:20] = 4
    labels[2:4, 1:7, 15:35] = 9
    labels[3, 3, 30:38] = 2
    values = np.random.default_rng(5).normal(100.0, 10.0, labels.shape)
    voxels = np.flatnonzero(labels)
    shuffled = np.random.default_rng(6).permutation(voxels)
    expected = {"four": [4], "four_or_nine": [4, 9], "two_to_nine": [2, 4, 9], "nine": [9], "absent": [5]}
    for order in (voxels, shuffled):
        members = {"four": np.array([4]), "four_or_nine": {4, 9}, "two_to_nine": range(2, 10),
                   "nine": (p for p in [9, 9]), "absent": [5]}
        masks = RegionMasks.from_partition(labels.shape, order, labels.ravel()[order], members,
                                           voxel_volume_ml=0.5)
        stats = masks.statistics(values)
        for i, pieces in enumerate(expected.values()):
            assert_matches(stats, i, brute_force(values, np.isin(labels, pieces)), 0.5)
        assert stats.voxel_count.tolist() == [int(np.isin(labels, p).sum()) for p in expected.values()]


def test_region_masks_fractional_region_against_hand_weights(random_case):
    values, labels = random_case
    occupancy = np.where(labels == 5, 0.75, np.where(labels == 6, 0.3, 0.0))
    masks = RegionMasks(labels.shape, {"partial": occupancy, "whole": labels == 5}, voxel_volume_ml=0.5)
    stats = masks.statistics(values)
    w = occupancy[occupancy > 0]
    v = values[occupancy > 0].astype(np.float64)
    mean = (w * v).sum() / w.sum()
    assert stats.volume_ml[0] == pytest.approx(w.sum() * 0.5, rel=1e-12)
    assert stats.mean[0] == pytest.approx(mean, rel=REL)
    assert stats.std[0] == pytest.approx(math.sqrt((w * (v - mean) ** 2).sum() / w.sum()), rel=REL)
    assert stats.max[0] == values[labels == 5].max()  # w = 0.75 > 0.5 voxels only


def test_region_masks_reject_an_image_on_another_grid():
    grid = sitk.Image((8, 8, 8), sitk.sitkFloat32)
    grid.SetSpacing((4.0, 4.0, 4.0))
    masks = RegionMasks(grid, {"box": np.ones((8, 8, 8), dtype=bool)})
    other = sitk.Image((8, 8, 8), sitk.sitkFloat32)
    other.SetSpacing((4.0, 4.0, 5.0))
    with pytest.raises(ValueError, match="differs from the region grid"):
        masks.statistics(other)
    with pytest.raises(ValueError, match="shape"):
        masks.statistics(np.zeros((8, 8, 9)))


def test_bad_inputs_raise_clear_errors():
    values = np.zeros((4, 4, 4))
    labels = np.ones((4, 4, 4), dtype=np.int32)
    with pytest.raises(ValueError, match="voxel_volume_ml is needed"):
        region_statistics(values, labels)
    with pytest.raises(ValueError, match="differs from label map shape"):
        region_statistics(values, labels[:3], voxel_volume_ml=1.0)
    with pytest.raises(ValueError, match="integer-valued"):
        region_statistics(values, labels.astype(float), voxel_volume_ml=1.0)
    with pytest.raises(ValueError, match="unknown engine 'fast'"):
        region_statistics(values, labels, voxel_volume_ml=1.0, engine="fast")
    with pytest.raises(ValueError, match=r"weights must lie in \[0, 1\]"):
        region_statistics(values, labels, voxel_volume_ml=1.0, weights=np.full((4, 4, 4), 1.5))
    with pytest.raises(ValueError, match="duplicates"):
        region_statistics(values, labels, voxel_volume_ml=1.0, label_values=[1, 1])
    with pytest.raises(ValueError, match="mask of region 'bad' has shape"):
        RegionMasks((4, 4, 4), {"bad": np.ones((4, 4, 5), dtype=bool)}, voxel_volume_ml=1.0)
    with pytest.raises(ValueError, match="outside the grid"):
        RegionMasks((4, 4, 4), {"far": Region(np.array([64]))}, voxel_volume_ml=1.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_requested_labels_on_the_renumbering_path_skip_voxels_of_other_labels(engine):
    """Huge labels with a requested list: voxels below, between and above the requested labels count nowhere."""
    rng = np.random.default_rng(8)
    labels = rng.choice(np.array([-7, 0, 5, 6, 2**40, 2**41]), size=(8, 9, 10))
    values = rng.normal(100.0, 20.0, size=labels.shape)
    stats = region_statistics(values, labels, voxel_volume_ml=0.5, label_values=[2**40, 5, 99], engine=engine)
    assert stats.label.tolist() == [2**40, 5, 99]
    for i, label in enumerate(stats.label):
        assert_matches(stats, i, brute_force(values, labels == label), 0.5)


@pytest.mark.parametrize(("unit", "suffix"), [("Bq/mL", "_bq_per_ml"), (" SUV bw ", "_suv_bw"), ("", "")])
def test_rows_name_every_value_column_with_the_unit(unit, suffix):
    labels = np.zeros((2, 3, 4), dtype=np.int32)
    labels[0, :, :2], labels[1] = 3, 8
    values = np.arange(labels.size, dtype=float).reshape(labels.shape)
    stats = region_statistics(values, labels, voxel_volume_ml=0.25, unit=unit)
    expected_keys = ["label", "voxel_count", "volume_ml", *(f"{name}{suffix}" for name in ("sum", "mean", "std",
                                                                                           "min", "max"))]
    rows = stats.rows()
    assert [list(row) for row in rows] == [expected_keys + (["total_mbq"] if unit == "Bq/mL" else [])] * 2
    in_three = values[labels == 3]
    assert rows[0]["label"] == 3 and type(rows[0]["label"]) is int
    assert (rows[0]["voxel_count"], rows[0]["volume_ml"]) == (6, 1.5)
    assert (rows[0][f"sum{suffix}"], rows[0][f"max{suffix}"]) == (in_three.sum(), in_three.max())
    assert stats.row(8)["voxel_count"] == 12
    with pytest.raises(KeyError, match=r"no region 5; have \[3, 8\]"):
        stats.row(5)


def test_region_masks_take_sitk_masks_on_their_grid_and_give_back_each_region():
    grid = sitk.Image((6, 5, 4), sitk.sitkFloat32)
    grid.SetSpacing((2.0, 2.5, 4.0))
    shape = (4, 5, 6)
    box = np.zeros(shape, dtype=np.uint8)
    box[1:3, 1:4, 2:5] = 7  # any nonzero value is inside
    mask = sitk.GetImageFromArray(box)
    mask.CopyInformation(grid)
    occupancy = np.zeros(shape)
    occupancy[0, 0, :3] = (0.2, 1.0, 0.5)
    masks = RegionMasks(grid, {"box": mask, "rim": occupancy})
    assert masks.region("box").voxels.tolist() == np.flatnonzero(box).tolist()
    rim = masks.region("rim")
    assert rim.voxels.tolist() == [0, 1, 2] and rim.weights.tolist() == [0.2, 1.0, 0.5]
    values = np.arange(box.size, dtype=float).reshape(shape)
    image = sitk.GetImageFromArray(values)
    image.CopyInformation(grid)
    stats = masks.statistics(image)
    assert stats.mean[0] == pytest.approx(values[box > 0].mean(), rel=REL)
    assert stats.volume_ml[0] == pytest.approx(18 * 0.02, rel=1e-12)  # 2 x 2.5 x 4 mm = 0.02 mL
    moved = sitk.GetImageFromArray(box)
    moved.CopyInformation(grid)
    moved.SetOrigin((0.0, 0.0, 10.0))
    with pytest.raises(ValueError, match=r"^mask of region 'box' is not on the region grid; resample it first$"):
        RegionMasks(grid, {"box": moved})
    with pytest.raises(ValueError, match=r"^occupancy of region 'rim' must lie in \[0, 1\]$"):
        RegionMasks(grid, {"rim": occupancy * 2.5})


def test_weighted_statistics_of_an_absent_label_are_empty():
    labels = np.zeros((3, 3, 3), dtype=np.int32)
    labels[0] = 2
    values = np.full(labels.shape, 40.0)
    stats = region_statistics(values, labels, voxel_volume_ml=1.0, weights=np.full(labels.shape, 0.5),
                              label_values=[2, 4])
    assert stats.volume_ml.tolist() == [4.5, 0.0] and stats.mean[0] == 40.0
    assert all(math.isnan(getattr(stats, key)[1]) for key in ("mean", "std", "min", "max"))
