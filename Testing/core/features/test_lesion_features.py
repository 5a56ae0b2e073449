"""Per-lesion baseline features: PET and MR images on their own grids, translated against the CT."""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timedelta

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.features import LESION_FEATURE_COLUMNS, lesion_features
from luprrt.io import PetInfo, QuantitativeImage, write_seg_nrrd, write_volume
from luprrt.physics import F18_HALF_LIFE_H
from luprrt.segments import Segmentation, SegmentTags
from luprrt.workflows.features import after_cycle_lesion_features, baseline_lesion_features

CT_SPACING_MM = 2.0
LESION_RADIUS_MM = 6.0
# Lesion centres on the CT (LPS mm), at voxel centres.
CENTRES_MM = {"L01": np.array([30.0, 40.0, 40.0]), "L02": np.array([96.0, 40.0, 40.0])}
# Where the CT point p lies in each image: p + translation (the transform CT -> image).
FDG_SHIFT_MM = np.array([5.0, -3.0, 7.0])
GA68_SHIFT_MM = np.array([-4.0, 6.0, 2.5])
ADC_SHIFT_MM = np.array([2.0, 2.0, -6.0])
# FDG: uniform hot spheres of radius 20 mm around each lesion (Bq/mL) in a 4000 Bq/mL background.
FDG_BQ_PER_ML = {"L01": 30000.0, "L02": 15000.0}
INJECTION = datetime(2024, 5, 2, 8, 0, 0)
WEIGHT_KG, FDG_MBQ = 70.0, 210.0
# 68Ga SUV and ADC vary linearly in space (linear interpolation reproduces them exactly).
GA68_RAMP = (12.0, 0.08, np.array([0.6, -0.48, 0.64]))  # SUV = a + g (q . d), g per mm
ADC_RAMP = (1.0e-3, 4.0e-6, np.array([0.8, 0.0, 0.6]))  # mm2/s = a + g (q . d)


def grid_positions(image: sitk.Image) -> np.ndarray:
    """LPS positions (mm) of the voxel centres of an axis-aligned image, shape (z, y, x, 3)."""
    axes = [image.GetOrigin()[k] + image.GetSpacing()[k] * np.arange(image.GetSize()[k]) for k in range(3)]
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    return np.stack([x, y, z], axis=-1)


def blank(size, spacing, origin) -> sitk.Image:
    image = sitk.Image([int(n) for n in size], sitk.sitkFloat32)
    image.SetSpacing([float(v) for v in spacing])
    image.SetOrigin([float(v) for v in origin])
    return image


def with_values(values: np.ndarray, grid: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(values)
    image.CopyInformation(grid)
    return image


def reference_case() -> tuple[Segmentation, dict[str, np.ndarray]]:
    """CT grid (2 mm), a liver box and two 6 mm lesions (in a second layer, as they overlap the liver)."""
    ct = blank((64, 40, 40), (CT_SPACING_MM,) * 3, (0.0, 0.0, 0.0))
    positions = grid_positions(ct)
    segmentation = Segmentation.empty_like(ct)
    liver = np.zeros(positions.shape[:3], dtype=bool)
    liver[5:35, 5:35, 5:60] = True
    segmentation.add_segment(liver, SegmentTags(role="liver"))
    masks = {}
    for lesion_id, centre in CENTRES_MM.items():
        masks[lesion_id] = np.linalg.norm(positions - centre, axis=-1) <= LESION_RADIUS_MM
        segmentation.add_segment(masks[lesion_id], SegmentTags(role="lesion", lesion_id=lesion_id))
    return segmentation, {lesion_id: positions[mask] for lesion_id, mask in masks.items()}


def fdg_pet(size=(44, 30, 30)) -> QuantitativeImage:
    grid = blank(size, (4.0, 4.0, 4.0), (-20.0, -30.0, -10.0))
    positions = grid_positions(grid)
    values = np.full(positions.shape[:3], 4000.0)
    for lesion_id, centre in CENTRES_MM.items():
        values[np.linalg.norm(positions - (centre + FDG_SHIFT_MM), axis=-1) <= 20.0] = FDG_BQ_PER_ML[lesion_id]
    acquisition = INJECTION + timedelta(minutes=60)
    pet = PetInfo(patient_weight_kg=WEIGHT_KG, radionuclide="^18^Fluorine", half_life_h=F18_HALF_LIFE_H,
                  decay_correction="START", series_datetime=acquisition)
    return QuantitativeImage(image=with_values(values.astype(np.float32), grid), units="Bq/mL", source="FDG",
                             acquisition_datetime=acquisition, injection_datetime=INJECTION,
                             injected_activity_mbq=FDG_MBQ, pet=pet)


def ramp(grid: sitk.Image, parameters) -> sitk.Image:
    a, g, direction = parameters
    return with_values(a + g * (grid_positions(grid) @ direction), grid)


def ga68_suv() -> QuantitativeImage:
    grid = blank((45, 30, 35), (3.5, 3.5, 3.0), (-15.0, -20.0, -5.0))
    return QuantitativeImage(image=ramp(grid, GA68_RAMP), units="SUVbw", source="Ga-68 SUV")


def adc_image() -> sitk.Image:
    return ramp(blank((100, 70, 30), (1.5, 1.5, 4.0), (-10.0, -10.0, -20.0)), ADC_RAMP)


def translation(shift_mm: np.ndarray) -> sitk.TranslationTransform:
    return sitk.TranslationTransform(3, [float(v) for v in shift_mm])


ALL_TRANSFORMS = {"fdg": translation(FDG_SHIFT_MM), "ga68": translation(GA68_SHIFT_MM),
                  "adc": translation(ADC_SHIFT_MM)}


def test_two_lesions_get_their_known_suv_and_adc_through_translated_grids():
    segmentation, lesion_points = reference_case()
    rows = lesion_features(segmentation, fdg=fdg_pet(), ga68=ga68_suv(), adc=adc_image(),
                           transforms=ALL_TRANSFORMS, patient_id="P07")
    assert [row["lesion_id"] for row in rows] == ["L01", "L02"]
    assert list(rows[0]) == ["patient_id", *LESION_FEATURE_COLUMNS]
    fdg_suv_per_bq_per_ml = WEIGHT_KG * 1000.0 / (FDG_MBQ * 1e6 * 2.0 ** (-1.0 / F18_HALF_LIFE_H))
    for row in rows:
        points = lesion_points[row["lesion_id"]]
        assert row["patient_id"] == "P07"
        # The lesion and its 4 mm PET neighbours lie inside the uniform 20 mm hot sphere, and the
        # 1 mL sphere around the lesion centre too: SUVmax = SUVpeak = SUVmean.
        fdg = FDG_BQ_PER_ML[row["lesion_id"]] * fdg_suv_per_bq_per_ml
        for column in ("fdg_suvmax", "fdg_suvpeak", "fdg_suvmean"):
            assert row[column] == pytest.approx(fdg, rel=1e-9), column
        # Linear ramps: mean at the lesion's centroid, max (min) at its farthest voxel along the ramp.
        a, g, direction = GA68_RAMP
        along = (points + GA68_SHIFT_MM) @ direction
        assert row["ga68_suvmean"] == pytest.approx(a + g * along.mean(), rel=1e-9)
        assert row["ga68_suvmax"] == pytest.approx(a + g * along.max(), rel=1e-9)
        # The 1 mL sphere mean of a linear field is its centre value: the peak sits on the same voxel.
        assert row["ga68_suvpeak"] == pytest.approx(a + g * along.max(), rel=1e-9)
        a, g, direction = ADC_RAMP
        along = (points + ADC_SHIFT_MM) @ direction
        assert row["adc_mean_mm2_per_s"] == pytest.approx(a + g * along.mean(), rel=1e-9)
        assert row["adc_min_mm2_per_s"] == pytest.approx(a + g * along.min(), rel=1e-9)
        assert row["volume_ml"] == pytest.approx(len(points) * CT_SPACING_MM ** 3 / 1000.0)
        # 6 mm sphere: 0.905 mL; on 2 mm voxels 123 voxels = 0.984 mL.
        assert row["volume_ml"] == pytest.approx(4.0 / 3.0 * math.pi * LESION_RADIUS_MM ** 3 / 1000.0, rel=0.1)
    # Numbers a reader can check by hand: ADC of L01 at x' = 32 mm, z' = 34 mm -> 1.0e-3 + 4e-6 * 46 mm.
    assert rows[0]["adc_mean_mm2_per_s"] == pytest.approx(1.184e-3, rel=1e-9)
    assert rows[1]["fdg_suvmax"] == pytest.approx(15000.0 * 70e3 / (210e6 * 0.6847), rel=1e-4)


def test_identity_transforms_shift_the_ramps_by_the_missing_translation():
    segmentation, lesion_points = reference_case()
    rows = lesion_features(segmentation, ga68=ga68_suv(), adc=adc_image())
    for row in rows:
        points = lesion_points[row["lesion_id"]]
        a, g, direction = GA68_RAMP
        assert row["ga68_suvmean"] == pytest.approx(a + g * (points @ direction).mean(), rel=1e-9)
        a, g, direction = ADC_RAMP
        assert row["adc_mean_mm2_per_s"] == pytest.approx(a + g * (points @ direction).mean(), rel=1e-9)
        # No FDG PET given: its columns are NaN.
        assert math.isnan(row["fdg_suvmax"]) and math.isnan(row["fdg_suvpeak"])
    assert "patient_id" not in rows[0]


def test_lesion_outside_the_pet_field_of_view_gets_nan(caplog):
    segmentation, _ = reference_case()
    # The PET grid ends at x = 100 mm (PET space); lesion L02 spans 95..107 mm there.
    with caplog.at_level(logging.WARNING, logger="luprrt.features.lesion_features"):
        rows = lesion_features(segmentation, fdg=fdg_pet(size=(30, 30, 30)), transforms=ALL_TRANSFORMS)
    assert not math.isnan(rows[0]["fdg_suvmax"])
    assert all(math.isnan(rows[1][c]) for c in ("fdg_suvmax", "fdg_suvpeak", "fdg_suvmean"))
    assert "lesion L02" in caplog.text and "outside the fdg field of view" in caplog.text
    assert "lesion L01" not in caplog.text


def test_masked_adc_voxels_are_skipped(caplog):
    segmentation, lesion_points = reference_case()
    adc = adc_image()
    values = sitk.GetArrayFromImage(adc)
    # MR voxel nearest to the centre of L01 (in MR space) is masked by the fit.
    index = adc.TransformPhysicalPointToIndex(tuple(float(v) for v in CENTRES_MM["L01"] + ADC_SHIFT_MM))
    values[index[2], index[1], index[0]] = np.nan
    with caplog.at_level(logging.WARNING, logger="luprrt.features.lesion_features"):
        rows = lesion_features(segmentation, adc=with_values(values, adc), transforms=ALL_TRANSFORMS)
    assert "lesion L01" in caplog.text and "no adc value (masked)" in caplog.text
    a, g, direction = ADC_RAMP
    along = (lesion_points["L01"] + ADC_SHIFT_MM) @ direction
    # The skipped voxels sit around the centroid, so the mean stays within the ramp's range.
    assert a + g * along.min() < rows[0]["adc_mean_mm2_per_s"] < a + g * along.max()
    assert rows[0]["adc_min_mm2_per_s"] == pytest.approx(a + g * along.min(), rel=1e-9)
    assert rows[1]["adc_mean_mm2_per_s"] == pytest.approx(
        a + g * ((lesion_points["L02"] + ADC_SHIFT_MM) @ direction).mean(), rel=1e-9)


def test_bad_inputs_are_named():
    segmentation, _ = reference_case()
    with pytest.raises(ValueError, match=r"transforms has unknown keys \['pet'\]"):
        lesion_features(segmentation, transforms={"pet": translation(FDG_SHIFT_MM)})
    with pytest.raises(ValueError, match="fdg: pass the PET as a QuantitativeImage"):
        lesion_features(segmentation, fdg=fdg_pet().image)
    with pytest.raises(ValueError, match=r"median ADC .* is above"):
        lesion_features(segmentation, adc=with_values(sitk.GetArrayFromImage(adc_image()) * 1e6, adc_image()))
    ct = segmentation.reference
    with pytest.raises(ValueError, match="no lesion segment"):
        lesion_features(Segmentation.empty_like(ct))
    untracked = Segmentation.empty_like(ct)
    mask = np.zeros(ct.GetSize()[::-1], dtype=bool)
    mask[10:12, 10:12, 10:12] = True
    untracked.add_segment(mask, SegmentTags(role="lesion"), segment_id="blob")
    with pytest.raises(ValueError, match=r"lesion segments \['blob'\] have no lesion_id"):
        lesion_features(untracked)
    overlapping = Segmentation.empty_like(ct)
    overlapping.add_segment(mask, SegmentTags(role="lesion", lesion_id="L01"), segment_id="a")
    overlapping.add_segment(mask, SegmentTags(role="lesion", lesion_id="L02"), segment_id="b")
    with pytest.raises(ValueError, match=r"lesion segments \['a', 'b'\] overlap"):
        lesion_features(overlapping)
    overlapping.retag("b", lesion_id="L01")
    with pytest.raises(ValueError, match=r"lesion ids \['L01'\] are used by more than one segment"):
        lesion_features(overlapping)


def patient_with_baseline_adc(folder, units: str):
    """A patient folder whose baseline ADC map (the ADC ramp) is written with the given unit."""
    segmentation, _ = reference_case()
    write_seg_nrrd(segmentation, folder / "seg.seg.nrrd")
    write_volume(adc_image(), folder / "adc.nrrd", units)
    manifest = {"patient_id": "P1", "sessions": [{"datetime": "2024-05-01T08:00:00", "segmentation": "seg.seg.nrrd"}],
                "baseline": {"adc": {"file": "adc.nrrd"}}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_baseline_adc_from_a_patient_folder_keeps_its_unit(tmp_path):
    rows = baseline_lesion_features(patient_with_baseline_adc(tmp_path / "mm2", "mm2/s"))
    assert [row["lesion_id"] for row in rows] == ["L01", "L02"]
    # Identity transform: the ramp at each lesion centre (the sphere mean of a linear ramp).
    a, g, d = ADC_RAMP
    for row in rows:
        centre = CENTRES_MM[row["lesion_id"]]
        assert row["adc_mean_mm2_per_s"] == pytest.approx(a + g * float(centre @ d), rel=1e-6)
    # A volume recorded in another unit (here HU) is not an ADC map: it was read as mm2/s before.
    with pytest.raises(ValueError, match="unknown ADC unit 'HU'"):
        baseline_lesion_features(patient_with_baseline_adc(tmp_path / "hu", "HU"))


def patient_with_after_cycle_adc(folder, session: str = "c1"):
    """A patient folder without baseline imaging whose ADC after cycle 1 (the ADC ramp) is outlined by session c1."""
    segmentation, _ = reference_case()
    write_seg_nrrd(segmentation, folder / "seg.seg.nrrd")
    write_volume(adc_image(), folder / "adc.nrrd", "mm2/s")
    manifest = {"patient_id": "P2",
                "sessions": [{"name": "c1", "datetime": "2024-05-01T08:00:00", "segmentation": "seg.seg.nrrd"}],
                "after_cycle": [{"cycle": 1, "session": session, "adc": {"file": "adc.nrrd"},
                                 "comment": "DWI b 0/800 s/mm2"}]}  # not an image: ignored
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_after_cycle_features_carry_their_cycle_and_a_patient_without_baseline_has_none(tmp_path, caplog):
    folder = patient_with_after_cycle_adc(tmp_path / "p2")
    with caplog.at_level(logging.INFO, logger="luprrt.workflows.features"):
        assert baseline_lesion_features(folder) == []
    assert "patient P2 has no baseline imaging; no lesion features" in caplog.text
    rows = after_cycle_lesion_features(folder)
    assert [(row["lesion_id"], row["cycle"]) for row in rows] == [("L01", 1), ("L02", 1)]
    a, g, d = ADC_RAMP
    for row in rows:
        assert row["adc_mean_mm2_per_s"] == pytest.approx(a + g * float(CENTRES_MM[row["lesion_id"]] @ d), rel=1e-6)
    bad = patient_with_after_cycle_adc(tmp_path / "bad", session="c9")
    with pytest.raises(ValueError) as error:
        after_cycle_lesion_features(bad)
    assert str(error.value) == (f"{bad}/manifest.json: after_cycle entry of cycle 1 names session 'c9'; "
                                f"sessions are ['c1']")
