"""Absorbed dose: local deposition, FFT voxel-S-value convolution, CT density, sphere consistency."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from luprrt.dosimetry import (
    HuDensityCalibration,
    build_voxel_s_value_kernel,
    density_image_from_ct,
    far_photon_dose,
    fft_convolve_same,
    local_deposition_dose,
    sphere_s_value_dose_gy,
    voxel_s_value_dose,
)

VOXEL_MM = 4.42
LED_GY_PER_MBQ_H_PER_ML = 0.0853  # 1 MBq/mL in water -> 0.0853 Gy/h (147.9 keV of electrons, ICRP-107)
SOFT_TISSUE = 1.03  # g/mL, the default density


def image(array, spacing=(VOXEL_MM,) * 3):
    result = sitk.GetImageFromArray(np.asarray(array, dtype=np.float32))
    result.SetSpacing(spacing)
    result.SetOrigin((1.0, -2.0, 3.0))
    return result


@pytest.fixture(scope="module")
def kernel():
    return build_voxel_s_value_kernel(VOXEL_MM)


def test_local_deposition_constant_and_density():
    tia = image(np.full((4, 5, 6), 2e6))  # 2 MBq h/mL
    water = sitk.GetArrayFromImage(local_deposition_dose(tia, 1.0))
    np.testing.assert_allclose(water, 2 * LED_GY_PER_MBQ_H_PER_ML, rtol=2e-4)
    # Without a density: soft tissue, 1.03 g/mL.
    tissue = sitk.GetArrayFromImage(local_deposition_dose(tia))
    np.testing.assert_allclose(tissue, 2 * LED_GY_PER_MBQ_H_PER_ML / SOFT_TISSUE, rtol=2e-4)
    dense = sitk.GetArrayFromImage(local_deposition_dose(tia, image(np.full((4, 5, 6), 1.6))))
    np.testing.assert_allclose(dense, 2 * LED_GY_PER_MBQ_H_PER_ML / 1.6, rtol=2e-4)


def test_uniform_large_cube_centre_dose_includes_photon_cross_dose(kernel):
    # At the centre of a 159 mm cube of uniform activity photons deposit ~36 % of their 35.1 keV
    # (project's own reference transport calculation, not a published value), so centre dose / local
    # electron deposition ~ 1.08 (the old 30 mm kernel gave 1.025).
    tia = np.zeros((48, 48, 48))
    tia[6:42, 6:42, 6:42] = 1e6  # 1 MBq h/mL in a 159 mm cube
    dose = sitk.GetArrayFromImage(voxel_s_value_dose(image(tia), kernel))
    local = LED_GY_PER_MBQ_H_PER_ML / SOFT_TISSUE
    assert dose[24, 24, 24] / local == pytest.approx(1.08, abs=0.02)
    # A voxel just outside a face gets electrons only from the face layer and photons: far less.
    assert dose[24, 24, 5] < 0.1 * dose[24, 24, 24]


def test_fft_convolution_equals_direct_convolution():
    rng = np.random.default_rng(5)
    values = rng.random((17, 20, 23))
    small = rng.random((5, 7, 3))
    expected = ndimage.convolve(values, small, mode="constant", cval=0.0)
    np.testing.assert_allclose(fft_convolve_same(values, small, workers=1), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="must be odd"):
        fft_convolve_same(values, np.ones((4, 3, 3)))


def test_point_source_reproduces_the_kernel(kernel):
    c = max(kernel.half_width_voxels) + 3
    n = 2 * c + 1
    tia = np.zeros((n, n, n))
    tia[c, c, c] = 1e6 / (VOXEL_MM**3 / 1000.0)  # 1 MBq h in the voxel
    dose = sitk.GetArrayFromImage(voxel_s_value_dose(image(tia), kernel))
    nx, ny, nz = kernel.half_width_voxels
    window = (slice(c - nz, c + nz + 1), slice(c - ny, c + ny + 1), slice(c - nx, c + nx + 1))
    far = far_photon_dose(tia.astype(np.float32) * VOXEL_MM**3 / 1e9, kernel)
    s = kernel.s_gy_per_mbq_h
    np.testing.assert_allclose(dose[window], s + far[window], rtol=1e-4, atol=1e-6 * s.max())
    # Far from the source only photons arrive (the old 30 mm kernel gave 0 there), the same along every
    # axis and falling off towards the image corner.
    assert dose[0, c, c] == pytest.approx(dose[c, c, 0], rel=0.01)
    assert dose[0, c, c] == pytest.approx(dose[2 * c, c, c], rel=0.01)
    assert 0.0 < dose[0, 0, 0] < dose[0, c, c] < 1e-3 * s.max()


def test_density_from_ct_scales_dose(kernel):
    calibration = HuDensityCalibration()
    np.testing.assert_allclose(calibration.density([-1000, -500, 0, 750, 1500, 3000]),
                               [0.0012, 0.5006, 1.0, 1.46, 1.92, 1.92])
    ct = image(np.full((12, 12, 12), 750.0))
    density = density_image_from_ct(ct)
    tia = image(np.full((12, 12, 12), 1e6))
    tissue = sitk.GetArrayFromImage(voxel_s_value_dose(tia, kernel))  # the kernel's 1.03 g/mL
    bone = sitk.GetArrayFromImage(voxel_s_value_dose(tia, kernel, density_g_per_ml=density))
    np.testing.assert_allclose(bone, tissue * SOFT_TISSUE / 1.46, rtol=1e-5)
    water = sitk.GetArrayFromImage(voxel_s_value_dose(tia, kernel, density_g_per_ml=1.0))
    np.testing.assert_allclose(water, tissue * SOFT_TISSUE, rtol=1e-5)
    with pytest.raises(ValueError, match="strictly"):
        HuDensityCalibration(hu=(0.0, 0.0), density_g_per_ml=(1.0, 1.1))


def test_voxelised_sphere_mean_dose_matches_sphere_s_value():
    kernel = build_voxel_s_value_kernel(2.0)
    coords = (np.arange(45) - 22) * 2.0
    z, y, x = np.meshgrid(coords, coords, coords, indexing="ij")
    inside = x**2 + y**2 + z**2 <= 10.0**2
    tia = np.where(inside, 1e6, 0.0)  # 1 MBq h/mL
    dose = sitk.GetArrayFromImage(voxel_s_value_dose(image(tia, (2.0,) * 3), kernel))
    volume_ml = inside.sum() * 8.0 / 1000.0
    assert dose[inside].mean() == pytest.approx(sphere_s_value_dose_gy(volume_ml, volume_ml), rel=0.03)


def test_dose_errors_name_the_grid(kernel):
    tia = image(np.ones((8, 8, 8)), spacing=(4.0, 4.0, 4.0))
    with pytest.raises(ValueError, match=r"built for \(4\.42, 4\.42, 4\.42\) mm voxels"):
        voxel_s_value_dose(tia, kernel)
    good = image(np.ones((8, 8, 8)))
    wrong = image(np.ones((8, 8, 9)))
    with pytest.raises(ValueError, match="density image size"):
        voxel_s_value_dose(good, kernel, density_g_per_ml=wrong)
    with pytest.raises(ValueError, match="non-positive"):
        local_deposition_dose(good, image(np.zeros((8, 8, 8))))


@pytest.mark.parametrize("n", [7, 8, 9, 21])
def test_far_photon_grid_transfer_conserves_activity_and_is_linear(n):
    # Cloud-in-cell assignment keeps the total activity, is the transpose of the interpolation
    # (so a source keeps its position within a block), and the interpolation is exact for linear fields.
    from luprrt.dosimetry.dose import _assign, _interpolate

    rng = np.random.default_rng(n)
    values = rng.random((n, 5, 4)).astype(np.float32)
    nodes = _assign(values, 0, 3)
    assert nodes.sum() == pytest.approx(values.sum(), rel=1e-6)
    probe = rng.random(nodes.shape).astype(np.float32)
    assert (nodes * probe).sum() == pytest.approx((values * _interpolate(probe, 0, n, 3)).sum(), rel=1e-5)
    ramp = np.broadcast_to(np.arange(nodes.shape[0], dtype=np.float32)[:, None, None], nodes.shape)
    np.testing.assert_allclose(np.diff(_interpolate(ramp, 0, n, 3)[:, 0, 0]), 1.0 / 3.0, rtol=1e-6)
