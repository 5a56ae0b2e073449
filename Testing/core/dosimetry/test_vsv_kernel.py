"""Voxel S-value kernels: published 2.21 mm values, symmetry, anisotropy, point kernels."""

from __future__ import annotations

import numpy as np
import pytest

from luprrt.dosimetry import build_voxel_s_value_kernel, point_kernels, sphere_mass_g, sphere_self_s_value
from luprrt.physics import LU177_ELECTRON_ENERGY_KEV, LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G


@pytest.fixture(scope="module")
def kernel_221():
    return build_voxel_s_value_kernel(2.21)


def test_221_kernel_matches_published_values_within_10_percent(kernel_221):
    # LU177.md: S(0,0,0) = 1.66, S(1,0,0) = 4.83e-2 mGy/(MBq s) for 2.21 mm soft-tissue voxels.
    assert kernel_221.s_value_mgy_per_mbq_s(0, 0, 0) == pytest.approx(1.66, rel=0.10)
    assert kernel_221.s_value_mgy_per_mbq_s(1, 0, 0) == pytest.approx(4.83e-2, rel=0.10)
    assert kernel_221.s_value_mgy_per_mbq_s(1, 1, 0) == pytest.approx(2.52e-3, rel=0.10)


def test_kernel_is_symmetric_and_decreasing(kernel_221):
    s = kernel_221.s_gy_per_mbq_h
    for axes in ((0,), (1,), (2,)):
        np.testing.assert_allclose(s, np.flip(s, axes), rtol=1e-9, atol=1e-12 * s.max())
    np.testing.assert_allclose(s, np.transpose(s, (2, 1, 0)), rtol=1e-9, atol=1e-12 * s.max())
    profile = [kernel_221.s_value_mgy_per_mbq_s(i) for i in range(8)]
    assert np.all(np.diff(profile) < 0)
    assert kernel_221.half_width_voxels == (14, 14, 14)  # ceil(30 mm / 2.21 mm)


def test_kernel_energy_is_electrons_plus_photons_within_radius(kernel_221):
    voxel_mass_g = 2.21**3 / 1000.0
    total = kernel_221.s_gy_per_mbq_h.sum() * voxel_mass_g / LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G
    # All electron energy (1.0) plus the photon energy absorbed within ~30 mm (2-3 %).
    assert 1.01 < total < 1.04


def test_anisotropic_voxels_follow_zyx_order():
    kernel = build_voxel_s_value_kernel((4.0, 4.0, 2.0))
    assert kernel.s_gy_per_mbq_h.shape == (31, 17, 17)  # z half-width 15, x/y 8 voxels
    # The 2 mm neighbour along z shares a larger face per unit mass than the 4 mm one along x.
    assert kernel.s_value_mgy_per_mbq_s(dz=1) > kernel.s_value_mgy_per_mbq_s(dx=1)
    assert kernel.s_value_mgy_per_mbq_s(dx=1) == pytest.approx(kernel.s_value_mgy_per_mbq_s(dy=1), rel=2e-3)
    assert kernel.matches((4.0, 4.0, 2.0)) and not kernel.matches((4.0, 4.0, 4.0))


def test_electron_fit_reproduces_sphere_table_and_conserves_energy():
    electrons = point_kernels.electron_radial_distribution()
    assert electrons.weights.sum() == pytest.approx(1.0)
    x = np.linspace(0.0, 60.0, 600001)
    assert np.trapezoid(electrons(x), x) == pytest.approx(LU177_ELECTRON_ENERGY_KEV, rel=1e-4)
    for radius in (1.0, 2.0, 5.0, 10.0):
        kept_kev = point_kernels.sphere_absorbed_energy_kev(point_kernels.total_radial_kev_per_mm, radius,
                                                            2 * radius)
        s_model = kept_kev / LU177_ELECTRON_ENERGY_KEV * 0.023696 / sphere_mass_g(radius)
        assert s_model == pytest.approx(sphere_self_s_value(sphere_mass_g(radius)), rel=0.02)


def test_photon_point_kernel_conserves_energy_and_uses_nist_water_data():
    mu, mu_en = point_kernels.water_coefficients_per_mm(200.0)
    assert (mu, mu_en) == pytest.approx((0.01370, 0.002967))  # NIST: 0.1370, 0.02967 cm^2/g
    x = np.linspace(0.0, 3000.0, 300001)
    gamma_kev = 208.366 * 0.1038 + 112.950 * 0.0620
    assert np.trapezoid(point_kernels.photon_radial_kev_per_mm(x), x) == pytest.approx(gamma_kev, rel=1e-4)
    # Berger's reduction factor: 1 at the centre, 0 at the diameter.
    assert point_kernels.sphere_reduction_factor([0.0, 2.0], 1.0) == pytest.approx([1.0, 0.0])
    with pytest.raises(ValueError, match=r"photon energy 50\.0 keV"):
        point_kernels.water_coefficients_per_mm(50.0)


def test_kernel_errors():
    with pytest.raises(ValueError, match="voxel size must be three positive lengths"):
        build_voxel_s_value_kernel((4.0, -1.0, 4.0))
    with pytest.raises(ValueError, match=r"kernel radius 5\.0 mm must be at least 3 voxels"):
        build_voxel_s_value_kernel(4.0, radius_mm=5.0)
    kernel = build_voxel_s_value_kernel(4.0)
    with pytest.raises(ValueError, match="outside the kernel half-width"):
        kernel.s_value_mgy_per_mbq_s(dx=20)
