"""SUVbw conversion (each DecayCorrection convention, DICOM round trip) and SUVmax/SUVmean/SUVpeak."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from scipy import ndimage

from luprrt.features.suv import (
    KERNEL_SUBSAMPLE_MM,
    sphere_kernel,
    sphere_mean_image,
    suv_conversion,
    suv_image,
    suv_statistics,
)
from luprrt.io import DicomPatient, PetInfo, QuantitativeImage, new_uid, read_pet_series, write_pet_series
from luprrt.physics import F18_HALF_LIFE_H, GA68_HALF_LIFE_H

INJECTION = datetime(2024, 3, 5, 9, 12, 30)
WEIGHT_KG = 72.5
ACTIVITY_MBQ = 250.0
# Exactly representable in float32, so the stored image adds no rounding.
CONCENTRATION_BQ_PER_ML = 12345.5
ONE_ML_RADIUS_MM = (3000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)


def image_from(array: np.ndarray, spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def pet_record(values: np.ndarray, *, decay_correction="START", series=INJECTION + timedelta(minutes=60),
               acquisition=INJECTION + timedelta(minutes=60), half_life_h=F18_HALF_LIFE_H,
               weight_kg=WEIGHT_KG, radionuclide="^18^Fluorine") -> QuantitativeImage:
    pet = PetInfo(patient_weight_kg=weight_kg, radiopharmaceutical="Fluorodeoxyglucose", radionuclide=radionuclide,
                  half_life_h=half_life_h, decay_correction=decay_correction, series_datetime=series)
    return QuantitativeImage(image=image_from(values.astype(np.float32)), units="Bq/mL", source="phantom PET",
                             acquisition_datetime=acquisition, injection_datetime=INJECTION,
                             injected_activity_mbq=ACTIVITY_MBQ, pet=pet)


def uniform_pet(**kwargs) -> QuantitativeImage:
    return pet_record(np.full((4, 5, 6), CONCENTRATION_BQ_PER_ML), **kwargs)


def expected_suv(elapsed_min: float, half_life_h: float = F18_HALF_LIFE_H) -> float:
    decayed_bq = ACTIVITY_MBQ * 1e6 * 2.0 ** (-(elapsed_min / 60.0) / half_life_h)
    return CONCENTRATION_BQ_PER_ML / (decayed_bq / (WEIGHT_KG * 1000.0))


def suv_values(qimage: QuantitativeImage, **kwargs) -> np.ndarray:
    return sitk.GetArrayFromImage(suv_image(qimage, **kwargs))


# --- SUVbw conversion ----------------------------------------------------------------------------

def test_start_decay_corrects_the_dose_to_the_series_start():
    # Series start 47 min after injection; the first slice was acquired 1 min later.
    qimage = uniform_pet(series=INJECTION + timedelta(minutes=47), acquisition=INJECTION + timedelta(minutes=48))
    values = suv_values(qimage)
    np.testing.assert_allclose(values, expected_suv(47.0), rtol=1e-9, atol=0)
    conversion = suv_conversion(qimage)
    assert conversion.decay_correction == "START"
    assert conversion.activity_at_reference_mbq[0] == pytest.approx(
        ACTIVITY_MBQ * 2.0 ** (-(47.0 / 60.0) / F18_HALF_LIFE_H), rel=1e-12)
    # Hand calculation: 12345.5 Bq/mL / (250e6 Bq * 0.7430 / 72500 g) = 4.817 (3.580 undecayed).
    assert values[0, 0, 0] == pytest.approx(4.817, abs=0.001)


def test_start_falls_back_to_the_acquisition_when_the_series_time_was_rewritten(caplog):
    qimage = uniform_pet(series=INJECTION + timedelta(minutes=95), acquisition=INJECTION + timedelta(minutes=61))
    with caplog.at_level(logging.WARNING, logger="luprrt.features.suv"):
        values = suv_values(qimage)
    np.testing.assert_allclose(values, expected_suv(61.0), rtol=1e-9, atol=0)
    assert "QIBA" in caplog.text
    # An explicit series_datetime is used as given.
    np.testing.assert_allclose(suv_values(qimage, series_datetime=INJECTION + timedelta(minutes=95)),
                               expected_suv(95.0), rtol=1e-9, atol=0)


def test_admin_uses_the_injected_activity_without_decay():
    values = suv_values(uniform_pet(decay_correction="ADMIN"))
    np.testing.assert_allclose(values, CONCENTRATION_BQ_PER_ML * WEIGHT_KG * 1000.0 / (ACTIVITY_MBQ * 1e6),
                               rtol=1e-9, atol=0)


def test_none_decays_the_dose_to_each_frame_acquisition():
    qimage = uniform_pet(decay_correction="NONE", acquisition=INJECTION + timedelta(minutes=55),
                         half_life_h=GA68_HALF_LIFE_H, radionuclide="^68^Gallium")
    # Default: the image's acquisition time for every slice (one static frame).
    np.testing.assert_allclose(suv_values(qimage), expected_suv(55.0, GA68_HALF_LIFE_H), rtol=1e-9, atol=0)
    # Two bed positions: slices 0-1 at 55 min, slices 2-3 at 58.5 min.
    frames = [INJECTION + timedelta(minutes=m) for m in (55.0, 55.0, 58.5, 58.5)]
    values = suv_values(qimage, frame_datetimes=frames)
    for z, minutes in enumerate((55.0, 55.0, 58.5, 58.5)):
        np.testing.assert_allclose(values[z], expected_suv(minutes, GA68_HALF_LIFE_H), rtol=1e-9, atol=0)
    assert values[2, 0, 0] / values[0, 0, 0] == pytest.approx(2.0 ** (3.5 / 60.0 / GA68_HALF_LIFE_H), rel=1e-12)


def test_half_life_comes_from_the_radionuclide_when_the_header_has_none():
    qimage = uniform_pet(half_life_h=None, radionuclide="^68^Gallium")
    np.testing.assert_allclose(suv_values(qimage), expected_suv(60.0, GA68_HALF_LIFE_H), rtol=1e-9, atol=0)
    np.testing.assert_allclose(suv_values(uniform_pet(half_life_h=None), radionuclide="Ga-68"),
                               expected_suv(60.0, GA68_HALF_LIFE_H), rtol=1e-9, atol=0)


def test_suv_of_a_pet_written_and_read_back_as_dicom(tmp_path):
    z, y, x = np.mgrid[0:12, 0:14, 0:16]
    truth = np.where((x - 8) ** 2 + (y - 7) ** 2 + (z - 6) ** 2 <= 16, 40000.0, 5000.0) + 37.0 * x
    image = image_from(truth.astype(np.float32), spacing=(4.07, 4.07, 3.27), origin=(-30.0, -28.0, 100.0))
    acquisition = INJECTION + timedelta(minutes=64)
    patient = DicomPatient(patient_id="SUV01", weight_kg=WEIGHT_KG)
    write_pet_series(image, tmp_path / "pet", patient=patient, study_uid=new_uid(),
                     frame_of_reference_uid=new_uid(), acquisition_datetime=acquisition,
                     injection_datetime=INJECTION, injected_activity_mbq=ACTIVITY_MBQ, radionuclide="Ga-68")
    qimage = read_pet_series(tmp_path / "pet")
    suv = suv_image(qimage)
    decayed_bq = ACTIVITY_MBQ * 1e6 * 2.0 ** (-(64.0 / 60.0) / GA68_HALF_LIFE_H)
    expected = truth / (decayed_bq / (WEIGHT_KG * 1000.0))
    np.testing.assert_allclose(sitk.GetArrayFromImage(suv), expected, rtol=1e-3, atol=0)
    assert suv.GetSpacing() == pytest.approx(image.GetSpacing())
    assert suv.GetOrigin() == pytest.approx(image.GetOrigin())


def test_missing_patient_weight_names_the_tag(tmp_path):
    image = image_from(np.full((3, 4, 5), 1000.0, dtype=np.float32))
    paths = write_pet_series(image, tmp_path / "pet", patient=DicomPatient(patient_id="SUV02"),
                             study_uid=new_uid(), frame_of_reference_uid=new_uid(),
                             acquisition_datetime=INJECTION + timedelta(minutes=60), injection_datetime=INJECTION,
                             injected_activity_mbq=ACTIVITY_MBQ, radionuclide="F-18")
    for path in paths:
        ds = pydicom.dcmread(path)
        del ds.PatientWeight
        ds.save_as(path)
    qimage = read_pet_series(tmp_path / "pet")
    with pytest.raises(ValueError, match=r"PatientWeight \(0010,1030\) is missing.*pass weight_kg="):
        suv_image(qimage)
    np.testing.assert_allclose(sitk.GetArrayFromImage(suv_image(qimage, weight_kg=80.0)),
                               1000.0 * 80e3 / (ACTIVITY_MBQ * 1e6 * 2.0 ** (-1.0 / F18_HALF_LIFE_H)), rtol=2e-4)


@pytest.mark.parametrize(("changes", "message"), [
    ({"decay_correction": None}, r"DecayCorrection \(0054,1102\) is missing.*pass decay_correction="),
    ({"decay_correction": "FOO"}, r"DecayCorrection \(0054,1102\) = 'FOO' is not one of"),
    ({"series": None, "acquisition": None}, r"SeriesDate \(0008,0021\) / SeriesTime \(0008,0031\) are missing"),
    ({"half_life_h": None, "radionuclide": None}, r"RadionuclideHalfLife \(0018,1075\) is missing"),
    ({"series": INJECTION - timedelta(minutes=5), "acquisition": None}, "is before the injection"),
    ({"weight_kg": -70.0}, "weight_kg must be positive"),
    ({"decay_correction": "NONE", "acquisition": None},
     r"AcquisitionDateTime \(0008,002A\) is missing.*pass frame_datetimes="),
])
def test_bad_header_values_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        suv_image(uniform_pet(**changes))


def test_other_bad_inputs_are_named():
    qimage = uniform_pet(decay_correction="NONE")
    with pytest.raises(ValueError, match="frame_datetimes has 3 values; give one per slice"):
        suv_image(qimage, frame_datetimes=[INJECTION + timedelta(minutes=60)] * 3)
    qimage.injected_activity_mbq = None
    with pytest.raises(ValueError, match=r"RadionuclideTotalDose \(0018,1074\) is missing.*injected_activity_mbq="):
        suv_image(qimage)
    qimage.injected_activity_mbq = ACTIVITY_MBQ
    qimage.injection_datetime = None
    with pytest.raises(ValueError, match=r"RadiopharmaceuticalStartDateTime \(0018,1078\).*injection_datetime="):
        suv_image(qimage)
    with pytest.raises(ValueError, match="in 'HU'"):
        suv_image(QuantitativeImage(image=image_from(np.zeros((2, 2, 2))), units="HU"))
    with pytest.raises(ValueError, match="unknown radionuclide 'Tc-99m'"):
        suv_image(uniform_pet(), radionuclide="Tc-99m")


# --- SUVpeak ---------------------------------------------------------------------------------------

def kernel_volume_bound_mm3(radius_mm: float, pitch_mm: float = KERNEL_SUBSAMPLE_MM) -> float:
    """Bound on |kernel volume - sphere volume| for sphere_kernel's in-plane midpoint rule.

    The kernel volume is sum over in-plane sub-cells (pitch h) of h^2 L(centre), with the
    exact chord L = 2 sqrt(r^2 - rho^2). (1) Sub-cells cut by the circle rho = r: at most
    8 r / h + 4 of them (4 monotone quarter arcs, each crossing at most 2 r / h + 1 cells);
    cell integral and midpoint value both lie in [0, h^2 max L], and max L over a cell
    within sqrt(2) h of the rim is 2 sqrt(2 sqrt(2) r h). (2) Cells inside the disc: the
    midpoint error h^4 / 24 |L_xx + L_yy| <= h^4 / 24 * 4 r^2 / (r^2 - rho^2)^(3/2),
    summed as an integral out to r - sqrt(2) h: pi h^2 r^2 / 3 / sqrt(2 sqrt(2) r h).
    """
    r, h = radius_mm, pitch_mm
    rim_chord = 2.0 * math.sqrt(2.0 * math.sqrt(2.0) * r * h)
    return (8.0 * r / h + 4.0) * h * h * rim_chord + math.pi * h * h * r * r / 3.0 / math.sqrt(
        2.0 * math.sqrt(2.0) * r * h)


def test_sphere_kernel_volume_is_one_ml_within_its_discretisation():
    bound = kernel_volume_bound_mm3(ONE_ML_RADIUS_MM)
    assert bound < 5.0  # < 0.5 % of 1 mL at the default 0.05 mm pitch
    for spacing in [(1.0, 1.0, 1.0), (4.0, 4.0, 4.0), (4.07, 4.07, 3.27), (0.8, 0.8, 2.5)]:
        occupancy = sphere_kernel(spacing)
        assert all(n % 2 == 1 for n in occupancy.shape)
        assert occupancy.min() >= 0.0 and occupancy.max() <= 1.0 + 1e-12
        centre = tuple(n // 2 for n in occupancy.shape)
        assert occupancy[centre] == pytest.approx(1.0)
        volume_mm3 = occupancy.sum() * np.prod(spacing)
        assert abs(volume_mm3 - 1000.0) <= bound, spacing
        # Mirror symmetric about the centre voxel.
        np.testing.assert_allclose(occupancy, occupancy[::-1, ::-1, ::-1], atol=1e-12)


def test_uniform_large_sphere_gives_peak_equal_to_max_and_mean():
    spacing = (2.0, 2.0, 2.5)
    z, y, x = np.mgrid[0:32, 0:40, 0:40]
    distance = np.sqrt(((x - 20) * 2.0) ** 2 + ((y - 20) * 2.0) ** 2 + ((z - 16) * 2.5) ** 2)
    inside = distance <= 25.0  # 65 mL sphere, far larger than the 1 mL peak sphere
    suv = image_from(np.where(inside, 7.25, 1.0), spacing=spacing)
    labels = image_from(inside.astype(np.uint8), spacing=spacing)
    stats = suv_statistics(suv, labels)
    assert stats.label.tolist() == [1]
    assert stats.suvmax[0] == pytest.approx(7.25, rel=1e-9)
    assert stats.suvmean[0] == pytest.approx(7.25, rel=1e-9)
    assert stats.suvpeak[0] == pytest.approx(7.25, rel=1e-9)
    assert stats.volume_ml[0] == pytest.approx(inside.sum() * 0.01)


def test_small_hot_sphere_gives_the_analytic_mean_fraction():
    # A 3 mm hot sphere (0.113 mL) of SUV 20 in zero background, on 1 mm voxels. Every voxel
    # it touches (centre within 3 + 0.87 mm) lies wholly inside the 1 mL sphere (6.2 - 0.87 mm)
    # for sphere centres up to 1.4 mm off, so the peak = 20 * (3 / 6.2035)^3 exactly, up to
    # the discretised volumes of the two spheres.
    hot_radius, value = 3.0, 20.0
    hot_ml = 4.0 / 3.0 * math.pi * hot_radius ** 3 / 1000.0
    hot = sphere_kernel((1.0, 1.0, 1.0), hot_ml, subsample_mm=0.005)  # occupancy, 0.005 mm pitch
    array = np.zeros((25, 25, 25))
    h = hot.shape[0] // 2
    array[12 - h:13 + h, 12 - h:13 + h, 12 - h:13 + h] = value * hot
    labels = np.zeros((25, 25, 25), dtype=np.uint8)
    labels[8:17, 8:17, 8:17] = 1
    stats = suv_statistics(image_from(array, spacing=(1.0, 1.0, 1.0)), image_from(labels, spacing=(1.0,) * 3))
    expected = value * (hot_radius / ONE_ML_RADIUS_MM) ** 3
    tolerance = kernel_volume_bound_mm3(ONE_ML_RADIUS_MM) / 1000.0 + \
        kernel_volume_bound_mm3(hot_radius, 0.005) / (hot_ml * 1000.0)
    assert stats.suvpeak[0] == pytest.approx(expected, rel=tolerance)
    assert stats.suvpeak[0] == pytest.approx(2.26, abs=0.01)
    assert stats.suvmax[0] == pytest.approx(value)


def test_single_hot_voxel_gives_value_times_voxel_over_one_ml():
    # Coarse 4 mm grid: voxel volume 0.064 mL. The centre voxel lies wholly inside the 1 mL
    # sphere, so the peak = value * (its volume) / (kernel volume) = value * 0.064 within
    # the kernel volume's discretisation bound.
    array = np.zeros((11, 11, 11))
    array[5, 5, 5] = 100.0
    labels = np.zeros_like(array, dtype=np.uint8)
    labels[4:7, 4:7, 4:7] = 3
    stats = suv_statistics(image_from(array, spacing=(4.0, 4.0, 4.0)), image_from(labels, spacing=(4.0,) * 3))
    assert stats.label.tolist() == [3]
    tolerance = kernel_volume_bound_mm3(ONE_ML_RADIUS_MM) / 1000.0
    assert stats.suvpeak[0] == pytest.approx(100.0 * 0.064, rel=tolerance)
    assert stats.suvmax[0] == 100.0
    assert stats.suvmean[0] == pytest.approx(100.0 / 27.0)


def test_several_lesions_get_their_own_peak_from_one_pass():
    spacing = (2.0, 2.0, 2.0)
    z, y, x = np.mgrid[0:20, 0:20, 0:48]
    values = np.ones((20, 20, 48))
    labels = np.zeros((20, 20, 48), dtype=np.int16)
    for label, (cx, suv) in enumerate([(10, 4.0), (24, 9.5), (38, 15.0)], start=1):
        inside = ((x - cx) ** 2 + (y - 10) ** 2 + (z - 10) ** 2) * 4.0 <= 12.0 ** 2
        values[inside] = suv
        labels[inside] = label
    stats = suv_statistics(image_from(values, spacing), image_from(labels, spacing), label_values=[3, 1, 2])
    assert stats.label.tolist() == [3, 1, 2]
    np.testing.assert_allclose(stats.suvpeak, [15.0, 4.0, 9.5], rtol=1e-9)
    np.testing.assert_allclose(stats.suvmax, [15.0, 4.0, 9.5], rtol=1e-9)
    assert [row["label"] for row in stats.rows()] == [3, 1, 2]


def test_sphere_mean_equals_a_direct_correlation_with_the_normalised_kernel():
    # Independent reference: scipy.ndimage.correlate with edge repetition (mode "nearest").
    values = np.random.default_rng(3).gamma(2.0, 2.0, size=(9, 12, 10))
    spacing = (1.5, 1.5, 2.0)
    kernel = sphere_kernel(spacing)
    expected = ndimage.correlate(values, kernel / kernel.sum(), mode="nearest")
    result = sitk.GetArrayFromImage(sphere_mean_image(image_from(values, spacing=spacing)))
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12)


def test_sphere_mean_is_exact_on_a_uniform_image_up_to_its_border():
    image = image_from(np.full((7, 9, 11), 3.5), spacing=(4.0, 4.0, 3.0))
    np.testing.assert_allclose(sitk.GetArrayFromImage(sphere_mean_image(image)), 3.5, rtol=1e-12)
    bad = np.full((7, 9, 11), 3.5)
    bad[3, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        sphere_mean_image(image_from(bad))
    with pytest.raises(ValueError, match="spacing must be three positive"):
        sphere_kernel((1.0, 0.0, 1.0))
