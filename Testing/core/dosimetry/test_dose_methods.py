"""The dose-method registry: one registration gives a method its rows, its map, its help line and its code."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.dosimetry import DOSE_METHODS, DoseMethod, dose_method_names, register_dose_method
from luprrt.io import DOSE_METHODS as DOSE_METHOD_CODES
from luprrt.segments import Segmentation, SegmentTags
from luprrt.workflows.dose_cycle import dose_maps, region_dose_rows
from luprrt.workflows.dose_regions import build_cycle_regions
from luprrt.workflows.dose_tac import TiaEstimate

# 147.9 keV per decay absorbed locally: 0.0853 Gy per MBq h per g (ICRP-107 electron energy, typed here).
LOCAL_GY_PER_MBQ_H_PER_G = 147.9e3 * 1.602176634e-19 * 3.6e9 / 1e-3


@pytest.fixture
def registered():
    """Register test methods for one test and remove them afterwards."""
    added = []

    def register(method: DoseMethod) -> DoseMethod:
        added.append(method.name)
        return register_dose_method(method)

    yield register
    for name in added:
        DOSE_METHODS.pop(name, None)


def _regions():
    grid = sitk.Image([20, 20, 20], sitk.sitkFloat32)
    grid.SetSpacing([4.0] * 3)
    z, y, x = np.indices((20, 20, 20))
    segmentation = Segmentation.empty_like(grid)
    segmentation.add_segment((x > 2) & (x < 12) & (y > 2) & (y < 17) & (z > 2) & (z < 17), SegmentTags("liver"))
    segmentation.add_segment((x - 7) ** 2 + (y - 9) ** 2 + (z - 9) ** 2 <= 6, SegmentTags("lesion", lesion_id="L1"))
    segmentation.add_segment((x > 13) & (x < 18) & (y > 5) & (y < 14) & (z > 5) & (z < 14),
                             SegmentTags("kidney", side="left"))
    tia = sitk.GetImageFromArray(np.full((20, 20, 20), 2.0e5, np.float32))  # Bq h/mL everywhere
    tia.CopyInformation(grid)
    return build_cycle_regions(segmentation, None, grid), tia


def test_the_registered_methods_and_their_dicom_codes():
    assert dose_method_names("region") == ("sphere_s_value", "organ_s_value", "local_deposition")
    assert dose_method_names("voxel") == ("voxel_local_deposition", "voxel_s_value")
    assert set(DOSE_METHODS) <= set(DOSE_METHOD_CODES)  # every method can be reported in a DICOM SR
    assert [DOSE_METHODS[m].applies_to("lesion") for m in dose_method_names("region")] == [True, False, True]
    assert [DOSE_METHODS[m].applies_to("kidney") for m in dose_method_names("region")] == [False, True, True]


def test_a_new_region_method_gets_its_rows_for_its_roles_only(registered):
    registered(DoseMethod("half_local_deposition", "half of the electron energy, for this test", "region",
                          roles=("kidney",), region_dose_gy=lambda tia, role, volume, mass, phantom:
                          0.5 * tia * LOCAL_GY_PER_MBQ_H_PER_G / mass))
    regions, tia = _regions()
    estimates = [[TiaEstimate("test", 10.0 * (r + 1), float("nan"), float("nan"), ())]
                 for r in range(len(regions.regions))]
    maps = dose_maps(tia, None, voxel_dose=False)

    rows, _ = region_dose_rows(regions, estimates, tia, maps, "voxel_test")

    by_key = {(row["region"], row["method"]): row for row in rows}
    kidney = next(r for r, region in enumerate(regions.regions) if region.role == "kidney")
    assert by_key[("kidney_left", "half_local_deposition")]["dose_gy"] == pytest.approx(
        0.5 * 10.0 * (kidney + 1) * LOCAL_GY_PER_MBQ_H_PER_G / regions.mass_g[kidney], rel=1e-9)
    assert by_key[("kidney_left", "local_deposition")]["dose_gy"] == pytest.approx(
        2.0 * by_key[("kidney_left", "half_local_deposition")]["dose_gy"], rel=1e-9)
    assert ("L1", "half_local_deposition") not in by_key and ("L1", "sphere_s_value") in by_key
    assert {method for _, method in by_key} >= {"voxel_local_deposition"} and \
        "voxel_s_value" not in {method for _, method in by_key}  # optional map skipped without voxel dose


def test_a_new_voxel_method_gets_its_map_and_its_rows(registered):
    registered(DoseMethod("voxel_twice_local", "twice the local deposition, for this test", "voxel",
                          dose_map=lambda tia, density, *, kernel_radius_mm, progress:
                          sitk.Cast(tia * (2.0 * LOCAL_GY_PER_MBQ_H_PER_G / 1e6 / density), sitk.sitkFloat32)))
    regions, tia = _regions()

    maps = dose_maps(tia, None, voxel_dose=False)

    assert list(maps) == ["voxel_local_deposition", "voxel_twice_local"]
    ratio = sitk.GetArrayViewFromImage(maps["voxel_twice_local"]) / sitk.GetArrayViewFromImage(
        maps["voxel_local_deposition"])
    np.testing.assert_allclose(ratio, 2.0, rtol=1e-5)
    rows, _ = region_dose_rows(regions, [[] for _ in regions.regions], tia, maps, "voxel_test")
    assert {row["method"] for row in rows} == {"voxel_local_deposition", "voxel_twice_local"}


@pytest.mark.parametrize(("method", "message"), [
    (DoseMethod("local_deposition", "again", "region", region_dose_gy=lambda *a: 0.0), "already registered"),
    (DoseMethod("odd", "no function", "voxel"), "of kind 'voxel' needs dose_map"),
    (DoseMethod("odd", "wrong kind", "organ", region_dose_gy=lambda *a: 0.0), "kind must be 'region' or 'voxel'"),
])
def test_bad_registrations_are_refused(method, message):
    before = dict(DOSE_METHODS)
    with pytest.raises(ValueError, match=message):
        register_dose_method(method)
    assert DOSE_METHODS == before
