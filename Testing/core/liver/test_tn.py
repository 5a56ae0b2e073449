"""T/N per lobe and per lesion on an analytic phantom; non-tumour margin; CSV output."""

from __future__ import annotations

import csv
import math
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk

import luprrt.liver.tn as tn
from luprrt.liver import CycleSpect, nontumour_mask, trial_definition, tumour_to_nontumour
from luprrt.segments import Segmentation, SegmentTags
from luprrt.tables import write_rows_csv

SHAPE = (30, 36, 40)  # z, y, x
SPACING_XYZ = (4.0, 4.0, 5.0)
VOXEL_ML = 4.0 * 4.0 * 5.0 / 1000
NONTUMOUR = {"right": 1000.0, "left": 1500.0}
LESIONS = {  # id: (centre z, y, x in voxels, radius in voxels, concentration Bq/mL, side)
    "L01": ((10, 12, 9), 2.5, 8000.0, "right"),
    "L02": ((20, 24, 12), 2.0, 6000.0, "right"),
    "L03": ((15, 18, 29), 3.0, 12000.0, "left"),
    # A second, colder and smaller lesion in the left lobe: every lobe's pooled max now differs from its
    # pooled mean, so a max-based ratio that used a mean anywhere (or the reverse) shows.
    "L04": ((8, 10, 30), 2.0, 4000.0, "left"),
}


def spect_grid() -> sitk.Image:
    image = sitk.Image(SHAPE[::-1], sitk.sitkFloat32)
    image.SetSpacing(SPACING_XYZ)
    image.SetOrigin((-90.0, -70.0, -120.0))
    return image


def ball(centre, radius) -> np.ndarray:
    z, y, x = np.indices(SHAPE)
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius ** 2


def lobe_masks() -> dict[str, np.ndarray]:
    liver = np.zeros(SHAPE, dtype=bool)
    liver[3:27, 4:32, 3:37] = True
    right = liver.copy()
    right[:, :, 20:] = False  # smaller x index = smaller LPS x = patient right
    return {"right": right, "left": liver & ~right}


def phantom_segmentation(ia_side: str | None = "right") -> Segmentation:
    seg = Segmentation.empty_like(spect_grid())
    for side, mask in lobe_masks().items():
        route = None if ia_side is None else ("IA" if side == ia_side else "IV")
        seg.add_segment(mask, SegmentTags("lobe", side=side, route=route))
    for lesion_id, (centre, radius, _, side) in LESIONS.items():
        seg.add_segment(ball(centre, radius), SegmentTags("lesion", side=side, lesion_id=lesion_id))
    return seg


def phantom_spect(scale: float = 1.0) -> sitk.Image:
    values = np.full(SHAPE, 50.0, dtype=np.float32)  # extrahepatic background
    for side, mask in lobe_masks().items():
        values[mask] = NONTUMOUR[side]
    for centre, radius, concentration, _ in LESIONS.values():
        values[ball(centre, radius)] = concentration
    image = sitk.GetImageFromArray(values * np.float32(scale))
    image.CopyInformation(spect_grid())
    return image


def rows_by(result, cycle, role, key) -> dict:
    return {row[key]: row for row in result.rows if row["cycle"] == cycle and row["role"] == role}


def expected_pooled_tn(side: str) -> tuple[float, float]:
    members = [(ball(c, r).sum(), conc) for c, r, conc, s in LESIONS.values() if s == side]
    mean = sum(n * conc for n, conc in members) / sum(n for n, _ in members)
    return mean / NONTUMOUR[side], max(conc for _, conc in members) / NONTUMOUR[side]


def test_tn_per_lesion_and_lobe_are_exact_on_a_uniform_phantom():
    seg = phantom_segmentation("right")
    cycles = [CycleSpect(1, 24.0, phantom_spect()), CycleSpect(2, 96.0, phantom_spect(0.7))]
    result = tumour_to_nontumour(cycles, seg)
    assert set(result.rows[0]) == set(tn.TN_COLUMNS)
    for cycle, scale in ((1, 1.0), (2, 0.7)):
        lesions = rows_by(result, cycle, "lesion", "lesion_id")
        for lesion_id, (centre, radius, concentration, side) in LESIONS.items():
            row = lesions[lesion_id]
            assert row["tn_mean"] == pytest.approx(concentration / NONTUMOUR[side], rel=1e-6)
            assert row["tn_max"] == pytest.approx(concentration / NONTUMOUR[side], rel=1e-6)
            assert row["volume_ml"] == pytest.approx(ball(centre, radius).sum() * VOXEL_ML, rel=1e-12)
            assert row["total_mbq"] == pytest.approx(
                ball(centre, radius).sum() * concentration * scale * VOXEL_ML / 1e6, rel=1e-6)
            assert row["side"] == side and row["route"] == ("IA" if side == "right" else "IV")
        tumour = rows_by(result, cycle, "tumour", "side")
        for side in ("right", "left"):
            expected_mean, expected_max = expected_pooled_tn(side)
            assert tumour[side]["tn_mean"] == pytest.approx(expected_mean, rel=1e-6)
            assert tumour[side]["tn_max"] == pytest.approx(expected_max, rel=1e-6)
            reference = tumour[side]["nontumour_mean_bq_per_ml"]
            assert reference == pytest.approx(NONTUMOUR[side] * scale, rel=1e-6)
        lobes = rows_by(result, cycle, "lobe", "side")
        assert lobes["right"]["volume_ml"] == pytest.approx(lobe_masks()["right"].sum() * VOXEL_ML, rel=1e-12)
        assert math.isnan(lobes["right"]["tn_mean"])
    ratio = {row["cycle"]: row for row in result.ratio_rows}
    right_mean, right_max = expected_pooled_tn("right")
    left_mean, left_max = expected_pooled_tn("left")
    assert ratio[1]["ia_side"] == "right"
    assert ratio[1]["tn_mean_ia_over_iv"] == pytest.approx(right_mean / left_mean, rel=1e-6)
    assert ratio[2]["tn_max_ia_over_iv"] == pytest.approx(right_max / left_max, rel=1e-6)
    assert result.lobe_tn(2, "left") == pytest.approx((left_mean, left_max), rel=1e-6)


def test_nontumour_volume_excludes_lesions_and_the_margin():
    seg = phantom_segmentation("left")
    result = tumour_to_nontumour([CycleSpect(1, 24.0, phantom_spect())], seg, margin_mm=6.0)
    lesion_centres = np.argwhere(np.any([ball(c, r) for c, r, _, _ in LESIONS.values()], axis=0))
    spacing_zyx = np.asarray(SPACING_XYZ[::-1])
    nontumour = rows_by(result, 1, "non-tumour", "side")
    for side, lobe in lobe_masks().items():
        voxels = np.argwhere(lobe)
        offsets = (voxels[:, None, :] - lesion_centres[None, :, :]) * spacing_zyx
        distance = np.linalg.norm(offsets, axis=2).min(axis=1)
        expected = np.count_nonzero(distance > 6.0) * VOXEL_ML
        assert nontumour[side]["volume_ml"] == pytest.approx(expected, rel=1e-12)
        assert nontumour[side]["route"] == ("IA" if side == "left" else "IV")
    assert result.parameters["margin_mm"] == 6.0


@pytest.mark.parametrize("margin_mm", [0.0, 4.0, 5.0, 7.5, 12.0])
def test_margin_removes_exactly_the_voxels_within_d_mm(margin_mm):
    rng = np.random.default_rng(int(margin_mm * 10))
    shape = (14, 16, 18)
    lesion = rng.random(shape) < 0.01
    lobe = np.zeros(shape, dtype=bool)
    lobe[1:13, 2:15, 1:16] = True
    spacing = (5.0, 4.0, 3.0)  # z, y, x
    got = nontumour_mask(lobe, lesion, spacing, margin_mm)
    voxels = np.argwhere(np.ones(shape, dtype=bool))
    offsets = (voxels[:, None, :] - np.argwhere(lesion)[None, :, :]) * spacing
    distance = np.linalg.norm(offsets, axis=2).min(axis=1)
    expected = lobe & (distance > margin_mm).reshape(shape)
    np.testing.assert_array_equal(got, expected)


def test_ct_grid_segmentation_is_resampled_once_per_grid(monkeypatch):
    # A CT grid three times finer whose middle sub-voxel centres coincide with the SPECT centres:
    # nearest-neighbour resampling gives back exactly the SPECT-grid masks.
    spect_seg = phantom_segmentation("right")
    ct = sitk.Image([3 * n for n in SHAPE[::-1]], sitk.sitkUInt8)
    ct.SetSpacing([s / 3 for s in SPACING_XYZ])
    ct.SetOrigin([o - s / 3 for o, s in zip(spect_grid().GetOrigin(), SPACING_XYZ, strict=True)])
    ct_seg = Segmentation.empty_like(ct)
    for seg in spect_seg.segments:
        fine = spect_seg.mask_array(seg.segment_id).repeat(3, 0).repeat(3, 1).repeat(3, 2)
        ct_seg.add_segment(fine, seg.tags)
    calls = []
    original = tn.build_lobe_regions
    monkeypatch.setattr(tn, "build_lobe_regions", lambda *a, **k: calls.append(1) or original(*a, **k))
    cycles = [CycleSpect(c, 24.0 * c, phantom_spect(0.9 ** c)) for c in range(1, 5)]
    result = tumour_to_nontumour(cycles, ct_seg)
    assert len(calls) == 1
    assert len(result.ratio_rows) == 4
    reference = tumour_to_nontumour(cycles[:1], spect_seg)
    assert rows_by(result, 1, "tumour", "side")["right"]["tn_mean"] == pytest.approx(
        rows_by(reference, 1, "tumour", "side")["right"]["tn_mean"], rel=1e-12)


def test_fractional_occupancy_gives_ct_lesion_volumes():
    ct = sitk.Image([3 * n for n in SHAPE[::-1]], sitk.sitkUInt8)
    ct.SetSpacing([s / 3 for s in SPACING_XYZ])
    ct.SetOrigin([o - s / 3 for o, s in zip(spect_grid().GetOrigin(), SPACING_XYZ, strict=True)])
    seg = Segmentation.empty_like(ct)
    for side, mask in lobe_masks().items():
        seg.add_segment(mask.repeat(3, 0).repeat(3, 1).repeat(3, 2), SegmentTags("lobe", side=side))
    z, y, x = np.indices(ct.GetSize()[::-1])
    small = (z - 31.0) ** 2 + (y - 37.0) ** 2 + ((x - 28.0) * 1.0) ** 2 <= 4.0 ** 2  # off-grid small lesion
    seg.add_segment(small, SegmentTags("lesion", side="right", lesion_id="L01"))
    result = tumour_to_nontumour([CycleSpect(1, 24.0, phantom_spect())], seg, occupancy="fractional",
                                 supersampling=3)
    row = rows_by(result, 1, "lesion", "lesion_id")["L01"]
    ct_volume_ml = small.sum() * np.prod(ct.GetSpacing()) / 1000
    assert row["volume_ml"] == pytest.approx(ct_volume_ml, rel=1e-9)  # nested grids: exact shares
    assert result.parameters == {"margin_mm": 5.0, "occupancy": "fractional", "supersampling": 3,
                                 "margin_rule": "one SPECT voxel (default without a calibration)",
                                 "edge_margin_mm": 0.0, "calibration": None, "target_lesions_per_lobe": 3,
                                 "target_min_diameter_mm": 30.0, "trial_definition": trial_definition(3, 30.0)}
    assert result.ratio_rows == []  # no routes assigned


def test_tn_rows_round_trip_through_csv(tmp_path):
    result = tumour_to_nontumour([CycleSpect(1, 24.0, phantom_spect())], phantom_segmentation())
    path = write_rows_csv(result.rows, tmp_path / "tn.csv")
    with open(path, newline="") as handle:
        read = list(csv.DictReader(handle))
    assert list(read[0]) == list(tn.TN_COLUMNS)
    lesion = next(r for r in read if r["lesion_id"] == "L03")
    assert float(lesion["tn_mean"]) == pytest.approx(12000.0 / 1500.0, rel=1e-12)


def test_tn_errors_name_the_problem():
    spect = phantom_spect()
    unassigned = Segmentation.empty_like(spect_grid())
    for side, mask in lobe_masks().items():
        unassigned.add_segment(mask, SegmentTags("lobe", side=side))
    unassigned.add_segment(ball((10, 12, 9), 2), SegmentTags("lesion", lesion_id="L09"))
    with pytest.raises(ValueError, match="'lesion L09' has no lobe side tag"):
        tumour_to_nontumour([CycleSpect(1, 24.0, spect)], unassigned)
    one_lobe = Segmentation.empty_like(spect_grid())
    one_lobe.add_segment(lobe_masks()["right"], SegmentTags("lobe", side="right"))
    with pytest.raises(ValueError, match="no segment tagged role=lobe, side=left"):
        tumour_to_nontumour([CycleSpect(1, 24.0, spect)], one_lobe)
    with pytest.raises(ValueError, match="no non-tumour liver left in the right lobe"):
        tumour_to_nontumour([CycleSpect(1, 24.0, spect)], phantom_segmentation(), margin_mm=200.0)
    with pytest.raises(ValueError, match="no SPECT cycles"):
        tumour_to_nontumour([], phantom_segmentation())
    with pytest.raises(ValueError, match="cycle 3 has no segmentation"):
        tumour_to_nontumour([CycleSpect(3, 24.0, spect)])
    coarse = sitk.Image((8, 8, 8), sitk.sitkFloat32)
    coarse.SetSpacing((20.0, 20.0, 20.0))
    coarse.SetOrigin(spect_grid().GetOrigin())
    with pytest.raises(ValueError, match=r"\['lesion L01'.*no voxel centre"):
        tumour_to_nontumour([CycleSpect(1, 24.0, coarse)], phantom_segmentation())


def test_a_spect_without_activity_in_a_lobe_and_bad_options_are_refused_before_any_ratio():
    """T/N divides by the non-tumour mean: a lobe at 0 Bq/mL (a SPECT off the liver, or empty) is named."""
    values = sitk.GetArrayFromImage(phantom_spect())
    values[lobe_masks()["left"]] = 0.0
    cold = sitk.GetImageFromArray(values)
    cold.CopyInformation(spect_grid())
    with pytest.raises(ValueError, match=r"^the non-tumour liver of the left lobe has a mean of 0 Bq/mL on the SPECT "
                                         r"of cycle 2 at 96 h: T/N divides by it"):
        tumour_to_nontumour([CycleSpect(2, 96.0, cold)], phantom_segmentation())
    spect, seg = phantom_spect(), phantom_segmentation()
    for options, message in (({"margin_mm": -1.0}, r"non-tumour margin must be >= 0 mm, got -1.0"),
                             ({"occupancy": "soft"}, r"unknown occupancy 'soft'"),
                             ({"edge_margin_mm": -2.0}, r"liver-edge margin must be >= 0 mm, got -2.0")):
        with pytest.raises(ValueError, match=message):
            tumour_to_nontumour([CycleSpect(1, 24.0, spect)], seg, **options)
    with pytest.raises(ValueError, match=r"cycle 1: hours_post_injection must be >= 0, got -1"):
        tumour_to_nontumour([CycleSpect(1, -1.0, spect)], seg)


def test_nontumour_mask_of_an_empty_lobe_or_without_lesions():
    lobe = lobe_masks()["right"]
    none = np.zeros(SHAPE, dtype=bool)
    assert not nontumour_mask(none, ball((10, 12, 9), 2), (5.0, 4.0, 4.0), 5.0).any()
    assert np.array_equal(nontumour_mask(lobe, none, (5.0, 4.0, 4.0), 5.0), lobe)


def test_overlapping_lesions_are_named():
    seg = phantom_segmentation()
    seg.add_segment(ball((10, 12, 10), 2.0), SegmentTags("lesion", side="right", lesion_id="L04"))
    with pytest.raises(ValueError, match=r"lesions \['lesion L01', 'lesion L04'\] overlap in \d+ voxels"):
        tumour_to_nontumour([CycleSpect(1, 24.0, phantom_spect())], seg)
    with pytest.raises(ValueError, match="margin must be >= 0 mm"):
        tumour_to_nontumour([CycleSpect(1, 24.0, phantom_spect())], phantom_segmentation(), margin_mm=-1.0)


def relabelled_phantom() -> Segmentation:
    """The phantom with lobe labels swapped (left 1, right 2) and lesion L03 alone in a third layer."""
    seg = phantom_segmentation("right")
    lobes = np.zeros(SHAPE, dtype=np.uint8)
    lobes[lobe_masks()["left"]] = 1
    lobes[lobe_masks()["right"]] = 2
    lesions = sitk.GetArrayFromImage(seg.layers[1])
    moved = np.where(lesions == 3, 7, 0).astype(np.uint8)
    lesions[lesions == 3] = 0
    layers = []
    for array in (lobes, lesions, moved):
        layer = sitk.GetImageFromArray(array)
        layer.CopyInformation(spect_grid())
        layers.append(layer)
    label = {"right": (0, 2), "left": (0, 1), "L01": (1, 1), "L02": (1, 2), "L03": (2, 7), "L04": (1, 4)}
    segments = [replace(s, layer=label[s.tags.lesion_id or s.tags.side][0],
                        label_value=label[s.tags.lesion_id or s.tags.side][1]) for s in seg.segments]
    return Segmentation(layers, segments)


def test_label_layout_does_not_change_the_rows():
    # Lobe labels that differ from the lobe codes, and lesions spread over two layers, take the
    # table-lookup and layer-merging paths of the region build: every number must stay the same.
    cycles = [CycleSpect(1, 24.0, phantom_spect()), CycleSpect(2, 96.0, phantom_spect(0.7))]
    standard = phantom_segmentation("right")
    relabelled = relabelled_phantom()
    assert [s.layer for s in standard.segments] == [0, 0, 1, 1, 1, 1]
    assert [s.layer for s in relabelled.segments] == [0, 0, 1, 1, 2, 1]
    for margin_mm in (None, 9.0):
        expected = tumour_to_nontumour(cycles, standard, margin_mm=margin_mm)
        got = tumour_to_nontumour(cycles, relabelled, margin_mm=margin_mm)
        assert got.rows == expected.rows
        assert got.ratio_rows == expected.ratio_rows
    lesion = rows_by(got, 1, "lesion", "lesion_id")["L03"]
    assert lesion["tn_mean"] == pytest.approx(12000.0 / 1500.0, rel=1e-6)
    assert lesion["volume_ml"] == pytest.approx(ball(*LESIONS["L03"][:2]).sum() * VOXEL_ML, rel=1e-12)


def test_lesion_absent_from_its_layer_is_named():
    seg = relabelled_phantom()
    seg.segments[-2] = replace(seg.segments[-2], label_value=9)  # no voxel carries label 9 (lesion L03)
    with pytest.raises(ValueError, match=r"segment 'lesion L03' \(.*\) is empty on the SPECT grid"):
        tumour_to_nontumour([CycleSpect(1, 24.0, phantom_spect())], seg)


# Three lesions per lobe, each of its own uptake and hotter at its centre than at its rim
# (c = C x (1.6 - 0.8 r / R)), so that in every lesion and every lobe the max differs from
# the mean: a max-based T/N computed from a mean, or the reverse, anywhere, shows.
GRADED_LESIONS = {  # id: (centre z, y, x in voxels, radius in voxels, rim-to-centre scale C Bq/mL, side)
    "R1": ((8, 10, 8), 2.5, 8000.0, "right"),
    "R2": ((18, 22, 9), 2.0, 5000.0, "right"),
    "R3": ((12, 26, 15), 3.0, 11000.0, "right"),
    "L1": ((15, 18, 29), 3.0, 12000.0, "left"),
    "L2": ((8, 10, 31), 2.0, 3000.0, "left"),
    "L3": ((21, 26, 25), 2.5, 7000.0, "left"),
}


def graded_phantom(ia_side: str) -> tuple[Segmentation, np.ndarray]:
    """Segmentation and SPECT values (z, y, x) of the graded-lesion phantom."""
    seg = Segmentation.empty_like(spect_grid())
    values = np.full(SHAPE, 50.0)
    for side, mask in lobe_masks().items():
        seg.add_segment(mask, SegmentTags("lobe", side=side, route="IA" if side == ia_side else "IV"))
        values[mask] = NONTUMOUR[side]
    z, y, x = np.indices(SHAPE)
    for lesion_id, (centre, radius, scale_bq_per_ml, side) in GRADED_LESIONS.items():
        inside = ball(centre, radius)
        distance = np.sqrt((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2)
        values[inside] = scale_bq_per_ml * (1.6 - 0.8 * distance[inside] / radius)
        seg.add_segment(inside, SegmentTags("lesion", side=side, lesion_id=lesion_id))
    return seg, values


@pytest.mark.parametrize("ia_side", ["right", "left"])
def test_mean_and_max_tn_of_every_lesion_lobe_and_the_ia_iv_ratio_against_voxel_truth(ia_side):
    """Every T/N against the phantom's own voxels (numpy mean / max over each mask), both cycles.

    Lobes are uniform, so the non-tumour mean is exact whatever the margin; float32 storage
    of the SPECT bounds the error at 1e-7 relative, hence rel=1e-6.
    """
    seg, values = graded_phantom(ia_side)
    spect = sitk.GetImageFromArray(values.astype(np.float32))
    spect.CopyInformation(spect_grid())
    late = sitk.GetImageFromArray((values * 0.6).astype(np.float32))
    late.CopyInformation(spect_grid())
    result = tumour_to_nontumour([CycleSpect(1, 24.0, spect), CycleSpect(2, 120.0, late)], seg)
    stored = values.astype(np.float32).astype(np.float64)
    pooled = {}
    for side in ("right", "left"):
        lesion_voxels = np.concatenate([stored[ball(c, r)] for c, r, _, s in GRADED_LESIONS.values() if s == side])
        pooled[side] = (lesion_voxels.mean() / NONTUMOUR[side], lesion_voxels.max() / NONTUMOUR[side])
        assert pooled[side][1] > 1.2 * pooled[side][0]  # the phantom does what it is for
    iv_side = "left" if ia_side == "right" else "right"
    ratio_rows = {row["cycle"]: row for row in result.ratio_rows}
    for cycle in (1, 2):
        lesions = rows_by(result, cycle, "lesion", "lesion_id")
        assert set(lesions) == set(GRADED_LESIONS)
        for lesion_id, (centre, radius, _, side) in GRADED_LESIONS.items():
            voxels = stored[ball(centre, radius)]
            assert voxels.max() > 1.2 * voxels.mean()
            assert lesions[lesion_id]["tn_mean"] == pytest.approx(voxels.mean() / NONTUMOUR[side], rel=1e-6)
            assert lesions[lesion_id]["tn_max"] == pytest.approx(voxels.max() / NONTUMOUR[side], rel=1e-6)
        tumour = rows_by(result, cycle, "tumour", "side")
        for side in ("right", "left"):
            assert (tumour[side]["tn_mean"], tumour[side]["tn_max"]) == pytest.approx(pooled[side], rel=1e-6)
        assert not any(row["target_lesion"] for row in result.rows if row["role"] != "lesion")
        ratio = ratio_rows[cycle]
        assert ratio["ia_side"] == ia_side
        assert ratio["tn_mean_ia_over_iv"] == pytest.approx(pooled[ia_side][0] / pooled[iv_side][0], rel=1e-6)
        assert ratio["tn_max_ia_over_iv"] == pytest.approx(pooled[ia_side][1] / pooled[iv_side][1], rel=1e-6)
        assert (ratio["tn_mean_ia"], ratio["tn_max_iv"]) == pytest.approx((pooled[ia_side][0], pooled[iv_side][1]),
                                                                          rel=1e-6)


def test_a_liver_edge_margin_without_a_calibration_keeps_the_uncorrected_definitions():
    """An edge margin is a region option, not a correction: without a calibration it needs none.

    The non-tumour region loses the voxels within the margin of the liver outline (here 8 mm: two 4 mm
    voxels in x and y, one 5 mm voxel in z, of each lobe's box, whose outline includes the lobes' shared
    face), its mean stays the lobe's true level, and the lesions keep nearest-voxel occupancy.
    """
    spect, seg = phantom_spect(), phantom_segmentation()
    plain = tumour_to_nontumour([CycleSpect(1, 24.0, spect)], seg)
    edged = tumour_to_nontumour([CycleSpect(1, 24.0, spect)], seg, edge_margin_mm=8.0)
    assert edged.parameters["occupancy"] == "nearest"
    assert edged.parameters["edge_margin_mm"] == 8.0
    assert "8 mm from the liver outline" in edged.parameters["margin_rule"]
    for side, level in NONTUMOUR.items():
        before = rows_by(plain, 1, "non-tumour", "side")[side]
        after = rows_by(edged, 1, "non-tumour", "side")[side]
        assert after["mean_bq_per_ml"] == pytest.approx(level, rel=1e-6)
        assert 0.0 < after["volume_ml"] < before["volume_ml"]
    assert rows_by(edged, 1, "lesion", "lesion_id")["L03"]["tn_mean"] == pytest.approx(12000.0 / 1500.0, rel=1e-12)
