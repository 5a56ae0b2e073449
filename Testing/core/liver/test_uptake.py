"""Kidney, liver, lobe and extrahepatic uptake in MBq and % of administered activity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.liver import UPTAKE_COLUMNS, CycleSpect, uptake_rows
from luprrt.segments import Segmentation, SegmentTags

SHAPE = (24, 28, 32)  # z, y, x
SPACING = (4.5, 4.5, 4.5)
VOXEL_ML = 4.5 ** 3 / 1000
HALF_LIFE_H = 159.528  # Lu-177, ICRP-107 (as in luprrt.physics)
CONCENTRATION = {"right kidney": 4.0e5, "left kidney": 3.0e5, "right lobe": 2.0e4, "left lobe": 3.0e4,
                 "background": 1.5e3}


def grid() -> sitk.Image:
    image = sitk.Image(SHAPE[::-1], sitk.sitkFloat32)
    image.SetSpacing(SPACING)
    image.SetOrigin((-70.0, -60.0, -50.0))
    return image


def masks() -> dict[str, np.ndarray]:
    boxes = {"right lobe": (slice(4, 18), slice(4, 20), slice(2, 14)),
             "left lobe": (slice(4, 18), slice(4, 20), slice(14, 22)),
             "right kidney": (slice(6, 14), slice(20, 25), slice(3, 8)),  # smaller x: patient right
             "left kidney": (slice(6, 14), slice(20, 25), slice(24, 29))}
    result = {}
    for name, box in boxes.items():
        mask = np.zeros(SHAPE, dtype=bool)
        mask[box] = True
        result[name] = mask
    return result


def segmentation() -> Segmentation:
    seg = Segmentation.empty_like(grid())
    m = masks()
    seg.add_segment(m["right lobe"] | m["left lobe"], SegmentTags("liver"))
    seg.add_segment(m["right lobe"], SegmentTags("lobe", side="right", route="IA"))
    seg.add_segment(m["left lobe"], SegmentTags("lobe", side="left", route="IV"))
    seg.add_segment(m["right kidney"], SegmentTags("kidney", side="right"))
    seg.add_segment(m["left kidney"], SegmentTags("kidney", side="left"))
    return seg


def spect(scale: float) -> sitk.Image:
    values = np.full(SHAPE, CONCENTRATION["background"])
    for name, mask in masks().items():
        values[mask] = CONCENTRATION[name]
    image = sitk.GetImageFromArray((values * scale).astype(np.float32))
    image.CopyInformation(grid())
    return image


def activity_mbq(name: str, scale: float) -> float:
    return masks()[name].sum() * CONCENTRATION[name] * scale * VOXEL_ML / 1e6


def test_kidney_and_organ_uptake_against_hand_formula():
    cycles = [CycleSpect(1, 24.0, spect(1.0), administered_activity_mbq=7400.0),
              CycleSpect(2, 72.0, spect(0.6), administered_activity_mbq=7300.0)]
    rows = uptake_rows(cycles, segmentation())
    assert set(rows[0]) == set(UPTAKE_COLUMNS)
    for cycle, hours, scale, administered in ((1, 24.0, 1.0, 7400.0), (2, 72.0, 0.6, 7300.0)):
        by_region = {row["region"]: row for row in rows if row["cycle"] == cycle}
        assert list(by_region) == ["left kidney", "right kidney", "kidneys", "liver", "left lobe",
                                   "right lobe", "extrahepatic"]
        at_scan = administered * math.exp(-math.log(2) * hours / HALF_LIFE_H)
        expected = {
            "left kidney": activity_mbq("left kidney", scale),
            "right kidney": activity_mbq("right kidney", scale),
            "right lobe": activity_mbq("right lobe", scale),
            "left lobe": activity_mbq("left lobe", scale),
        }
        expected["kidneys"] = expected["left kidney"] + expected["right kidney"]
        expected["liver"] = expected["left lobe"] + expected["right lobe"]
        total = float(sitk.GetArrayFromImage(spect(scale)).astype(np.float64).sum()) * VOXEL_ML / 1e6
        expected["extrahepatic"] = total - expected["liver"]
        for region, mbq in expected.items():
            row = by_region[region]
            assert row["activity_mbq"] == pytest.approx(mbq, rel=1e-9), region
            assert row["administered_activity_at_scan_mbq"] == pytest.approx(at_scan, rel=1e-12)
            percent = row["uptake_percent_of_administered"]
            assert percent == pytest.approx(100 * mbq / at_scan, rel=1e-9), region
        assert by_region["right lobe"]["route"] == "IA" and by_region["left kidney"]["side"] == "left"
        assert by_region["extrahepatic"]["volume_ml"] == pytest.approx(
            (np.prod(SHAPE) - (masks()["right lobe"] | masks()["left lobe"]).sum()) * VOXEL_ML, rel=1e-12)


def test_liver_from_lobes_and_unsided_kidneys():
    seg = Segmentation.empty_like(grid())
    m = masks()
    seg.add_segment(m["right lobe"], SegmentTags("lobe", side="right"))
    seg.add_segment(m["left lobe"], SegmentTags("lobe", side="left"))
    seg.add_segment(m["right kidney"] | m["left kidney"], SegmentTags("kidney"))
    rows = uptake_rows([CycleSpect(1, 0.0, spect(1.0), administered_activity_mbq=100.0)], seg)
    by_region = {row["region"]: row for row in rows}
    assert "left kidney" not in by_region
    kidneys = activity_mbq("left kidney", 1.0) + activity_mbq("right kidney", 1.0)
    # 100 MBq given at t = 0: MBq and % coincide
    assert by_region["kidneys"]["uptake_percent_of_administered"] == pytest.approx(kidneys, rel=1e-9)
    assert by_region["liver"]["activity_mbq"] == pytest.approx(
        activity_mbq("left lobe", 1.0) + activity_mbq("right lobe", 1.0), rel=1e-9)


def test_uptake_errors():
    with pytest.raises(ValueError, match="cycle 1: administered_activity_mbq must be positive, got None"):
        uptake_rows([CycleSpect(1, 24.0, spect(1.0))], segmentation())
    no_kidneys = Segmentation.empty_like(grid())
    no_kidneys.add_segment(masks()["right lobe"], SegmentTags("liver"))
    with pytest.raises(ValueError, match="no kidney segment"):
        uptake_rows([CycleSpect(1, 24.0, spect(1.0), administered_activity_mbq=7400.0)], no_kidneys)
    with pytest.raises(ValueError, match="hours_post_injection must be >= 0"):
        uptake_rows([CycleSpect(1, -2.0, spect(1.0), administered_activity_mbq=7400.0)], segmentation())


def test_a_lesion_smaller_than_one_spect_voxel_does_not_stop_the_organ_uptake():
    # The segmentation lives on a grid twice as fine as the SPECT; a one-fine-voxel lesion has no
    # SPECT voxel centre. Uptake endpoints use whole organs only, so the kidneys are still measured.
    coarse = spect(1.0)
    fine_reference = sitk.Image([2 * n for n in SHAPE[::-1]], sitk.sitkUInt8)
    fine_reference.SetSpacing(tuple(s / 2 for s in SPACING))
    fine_reference.SetOrigin(tuple(o - s / 4 for o, s in zip(grid().GetOrigin(), SPACING, strict=True)))
    fine = Segmentation.empty_like(fine_reference)
    upsample = {name: mask.repeat(2, 0).repeat(2, 1).repeat(2, 2) for name, mask in masks().items()}
    fine.add_segment(upsample["right kidney"], SegmentTags("kidney", side="right"))
    fine.add_segment(upsample["left kidney"], SegmentTags("kidney", side="left"))
    fine.add_segment(upsample["right lobe"], SegmentTags("lobe", side="right", route="IA"))
    fine.add_segment(upsample["left lobe"], SegmentTags("lobe", side="left", route="IV"))
    speck = np.zeros(upsample["right lobe"].shape, dtype=bool)
    speck[20, 20, 10] = True  # a fine voxel whose centre is off every coarse voxel centre
    fine.add_segment(speck, SegmentTags("lesion", side="right", route="IA", lesion_id="L01"))
    rows = uptake_rows([CycleSpect(1, 0.0, coarse, administered_activity_mbq=1000.0)], fine)
    kidneys = next(r for r in rows if r["region"] == "kidneys")
    expected_mbq = (CONCENTRATION["right kidney"] * masks()["right kidney"].sum()
                    + CONCENTRATION["left kidney"] * masks()["left kidney"].sum()) * VOXEL_ML / 1e6
    assert kidneys["activity_mbq"] == pytest.approx(expected_mbq, rel=1e-6)
