"""Voxel-wise TIA: closed-form log-linear fits against per-voxel analytic values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.dosimetry import voxel_time_integrated_activity
from luprrt.physics import LU177_DECAY_CONSTANT_PER_H

TIMES_H = np.array([4.0, 24.0, 96.0, 168.0])
SHAPE = (12, 14, 16)  # z, y, x


def images_of(arrays, spacing=(2.5, 2.5, 3.0)):
    images = []
    for array in arrays:
        image = sitk.GetImageFromArray(np.asarray(array, dtype=np.float32))
        image.SetSpacing(spacing)
        image.SetOrigin((-10.0, 5.0, 2.0))
        images.append(image)
    return images


@pytest.fixture(scope="module")
def exponential_phantom():
    rng = np.random.default_rng(3)
    a0 = rng.uniform(1e3, 1e5, SHAPE)  # Bq/mL
    lam = rng.uniform(LU177_DECAY_CONSTANT_PER_H, 0.06, SHAPE)  # 1/h, at least physical
    return a0, lam, [a0 * np.exp(-lam * t) for t in TIMES_H]


@pytest.mark.parametrize("weighting", ["poisson", "uniform"])
def test_analytic_tia_equals_a0_over_lambda_per_voxel(exponential_phantom, weighting):
    a0, lam, arrays = exponential_phantom
    result = voxel_time_integrated_activity(images_of(arrays), TIMES_H, weighting=weighting)
    tia = sitk.GetArrayFromImage(result.tia_bq_h_per_ml)
    np.testing.assert_allclose(tia, a0 / lam, rtol=1e-5)
    np.testing.assert_allclose(sitk.GetArrayFromImage(result.lambda_eff_per_h), lam, rtol=1e-5)
    assert result.floored_voxel_count == 0 and result.empty_voxel_count == 0
    assert result.tia_bq_h_per_ml.GetSpacing() == (2.5, 2.5, 3.0)
    assert result.tia_bq_h_per_ml.GetOrigin() == (-10.0, 5.0, 2.0)


def test_trapezoid_integration_equals_hand_sum_plus_analytic_tail(exponential_phantom):
    _, lam, arrays = exponential_phantom
    result = voxel_time_integrated_activity(images_of(arrays), TIMES_H, integration="trapezoid")
    tia = sitk.GetArrayFromImage(result.tia_bq_h_per_ml)
    a = np.asarray([np.float32(x).astype(np.float64) for x in arrays])
    t = TIMES_H
    expected = (t[0] / 2 * a[0] + (t[1] - t[0]) / 2 * (a[0] + a[1]) + (t[2] - t[1]) / 2 * (a[1] + a[2])
                + (t[3] - t[2]) / 2 * (a[2] + a[3]) + a[3] / lam)
    np.testing.assert_allclose(tia, expected, rtol=1e-5)
    flat = voxel_time_integrated_activity(images_of(arrays), TIMES_H, integration="trapezoid", head="flat")
    flat_tia = sitk.GetArrayFromImage(flat.tia_bq_h_per_ml)
    np.testing.assert_allclose(flat_tia, expected + t[0] / 2 * a[0], rtol=1e-5)


def test_physical_floor_for_rising_and_constant_voxels():
    rising = np.array([100.0, 150.0, 200.0, 210.0])
    constant = np.array([500.0, 500.0, 500.0, 500.0])
    arrays = [np.full((2, 2, 2), 1000.0 * math.exp(-0.02 * t)) for t in TIMES_H]
    for i in range(4):
        arrays[i][0, 0, 0] = rising[i]
        arrays[i][1, 1, 1] = constant[i]
    result = voxel_time_integrated_activity(images_of(arrays), TIMES_H)
    lam = sitk.GetArrayFromImage(result.lambda_eff_per_h)
    tia = sitk.GetArrayFromImage(result.tia_bq_h_per_ml)
    assert result.floored_voxel_count == 2
    assert lam[0, 0, 0] == pytest.approx(LU177_DECAY_CONSTANT_PER_H, rel=1e-6)
    assert np.all(lam >= LU177_DECAY_CONSTANT_PER_H * (1 - 1e-6))
    for index, values in (((0, 0, 0), rising), ((1, 1, 1), constant)):
        # Constrained weighted fit: ln A0 = sum w (ln A + lambda_phys t) / sum w, w = A.
        ln_a0 = np.sum(values * (np.log(values) + LU177_DECAY_CONSTANT_PER_H * TIMES_H)) / values.sum()
        assert tia[index] == pytest.approx(math.exp(ln_a0) / LU177_DECAY_CONSTANT_PER_H, rel=1e-5)
    assert tia[0, 1, 0] == pytest.approx(1000.0 / 0.02, rel=1e-5)


def test_non_positive_values_excluded_and_empty_voxels_zero():
    lam = 0.015
    arrays = [np.full((2, 3, 4), 2000.0 * math.exp(-lam * t)) for t in TIMES_H]
    arrays[1][0, 0, 0] = -50.0  # a noise value: no information on ln A
    for array in arrays:
        array[1, 2, 3] = 0.0  # background voxel
    arrays[2][1, 0, 0] = 0.0
    arrays[3][1, 0, 0] = -1.0  # two positive values left (4 h, 24 h)
    analytic = voxel_time_integrated_activity(images_of(arrays), TIMES_H)
    tia = sitk.GetArrayFromImage(analytic.tia_bq_h_per_ml)
    assert tia[0, 0, 0] == pytest.approx(2000.0 / lam, rel=1e-5)
    assert tia[1, 2, 3] == 0.0
    assert analytic.empty_voxel_count == 1
    # Two positive points still define the slope.
    assert tia[1, 0, 0] == pytest.approx(2000.0 / lam, rel=1e-5)
    trapezoid = voxel_time_integrated_activity(images_of(arrays), TIMES_H, integration="trapezoid")
    t = TIMES_H
    a = [float(np.float32(2000.0 * math.exp(-lam * ti))) for ti in t]
    expected = t[0] / 2 * a[0] + (t[1] - t[0]) / 2 * a[0] + (t[2] - t[1]) / 2 * a[2] \
        + (t[3] - t[2]) / 2 * (a[2] + a[3]) + a[3] / lam
    assert sitk.GetArrayFromImage(trapezoid.tia_bq_h_per_ml)[0, 0, 0] == pytest.approx(expected, rel=1e-5)


def test_single_positive_point_uses_physical_decay():
    arrays = [np.full((1, 1, 2), v) for v in (800.0, 0.0, 0.0, 0.0)]
    result = voxel_time_integrated_activity(images_of(arrays), TIMES_H)
    expected = 800.0 * math.exp(LU177_DECAY_CONSTANT_PER_H * 4.0) / LU177_DECAY_CONSTANT_PER_H
    np.testing.assert_allclose(sitk.GetArrayFromImage(result.tia_bq_h_per_ml), expected, rtol=1e-5)


def test_grid_and_time_errors_name_the_problem(exponential_phantom):
    _, _, arrays = exponential_phantom
    images = images_of(arrays)
    images[2].SetSpacing((2.5, 2.5, 4.0))
    with pytest.raises(ValueError, match=r"image 2 spacing \(2\.5, 2\.5, 4\.0\)"):
        voxel_time_integrated_activity(images, TIMES_H)
    with pytest.raises(ValueError, match="increase strictly"):
        voxel_time_integrated_activity(images_of(arrays), [4.0, 24.0, 24.0, 168.0])
    with pytest.raises(ValueError, match="3 times"):
        voxel_time_integrated_activity(images_of(arrays), [4.0, 24.0, 96.0])
    with pytest.raises(ValueError, match="at least 2 images"):
        voxel_time_integrated_activity(images_of(arrays[:1]), [4.0])
    with pytest.raises(ValueError, match="unknown integration 'simpson'"):
        voxel_time_integrated_activity(images_of(arrays), TIMES_H, integration="simpson")
    with pytest.raises(ValueError) as error:
        voxel_time_integrated_activity(images_of(arrays), TIMES_H, weighting="gaussian")
    assert str(error.value) == "unknown weighting 'gaussian'; expected one of ('poisson', 'uniform')"
    with pytest.raises(ValueError) as error:
        voxel_time_integrated_activity(images_of(arrays), TIMES_H, integration="trapezoid", head="cubic")
    assert str(error.value) == "unknown trapezoid head 'cubic'; expected one of ('linear', 'flat')"
    vector_first = images_of(arrays)
    vector_first[0] = sitk.Compose(vector_first[0], vector_first[0])  # the first image was never checked
    with pytest.raises(ValueError, match="image 0 has 2 components"):
        voxel_time_integrated_activity(vector_first, TIMES_H)
    with pytest.raises(ValueError, match=r"half-life must be positive, got 0\.0 h"):
        voxel_time_integrated_activity(images_of(arrays), TIMES_H, half_life_h=0.0)


def test_inputs_not_modified(exponential_phantom):
    _, _, arrays = exponential_phantom
    images = images_of(arrays)
    before = [sitk.GetArrayFromImage(image).copy() for image in images]
    voxel_time_integrated_activity(images, TIMES_H, integration="trapezoid")
    for image, array in zip(images, before, strict=True):
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image), array)
