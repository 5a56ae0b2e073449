"""Calibration phantoms: voxel maps against the analytic geometry of the standards.

Truths are closed forms written out here (cylinder volume pi r^2 h, sphere volume pi d^3/6, the
IEC body section as half disc + rounded part, NEMA NU 2 sphere ring), never the functions under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.phantom import (
    IEC_SPHERE_DIAMETERS_MM,
    nema_iec_body_phantom,
    phantom_grid,
    sphere_occupancy,
    uniform_cylinder_phantom,
)

# mu of water at 208.366 keV, by hand from the NIST values 0.1370 (200 keV) and 0.1186 cm2/g
# (300 keV), log-log: 0.1370 * (0.1186/0.1370) ** (ln(208.366/200) / ln(1.5)) = 0.13501 /cm.
MU_WATER_208 = 0.1370 * (0.1186 / 0.1370) ** (math.log(208.366 / 200.0) / math.log(1.5))


@pytest.fixture(scope="module")
def grid():
    return phantom_grid(4.42, (330.0, 260.0, 220.0))


@pytest.fixture(scope="module")
def iec(grid):
    return nema_iec_body_phantom(grid, background_bq_per_ml=40e3, sphere_to_background=10.0)


def _value_at(image: sitk.Image, point_mm) -> float:
    return float(image[image.TransformPhysicalPointToIndex([float(v) for v in point_mm])])


def test_cylinder_holds_its_activity_in_its_analytic_volume(grid):
    phantom = uniform_cylinder_phantom(grid, activity_mbq=800.0)
    voxel_ml = 4.42**3 / 1000.0
    concentration = sitk.GetArrayViewFromImage(phantom.concentration)
    volume_ml = math.pi * 100.0**2 * 200.0 / 1000.0
    # Boundary voxels are area fractions from 16 x 16 sub-samples: the total is exact to ~0.1 %.
    assert concentration.sum() * voxel_ml * 1e-6 == pytest.approx(800.0, rel=2e-3)
    assert phantom.truth["water_volume_ml"] == pytest.approx(volume_ml, rel=1e-12)
    assert _value_at(phantom.concentration, (0, 0, 0)) == pytest.approx(800e6 / volume_ml, rel=1e-5)
    assert _value_at(phantom.mu, (0, 0, 0)) == pytest.approx(MU_WATER_208, rel=1e-5)
    assert _value_at(phantom.density, (0, 0, 0)) == pytest.approx(1.0, rel=1e-6)
    assert _value_at(phantom.ct, (0, 0, 0)) == pytest.approx(0.0, abs=1e-3)
    assert _value_at(phantom.concentration, (0, 0, 106.0)) == 0.0  # beyond the lid wall
    assert _value_at(phantom.ct, (160.0, 0, 0)) == -1000.0


def test_iec_spheres_sit_on_the_nema_ring_with_their_volumes(iec, grid):
    axis = np.array(iec.truth["axis_mm"])
    centres = np.array([s.centre_mm for s in iec.spheres])
    assert [s.diameter_mm for s in iec.spheres] == list(IEC_SPHERE_DIAMETERS_MM)
    # Ring radius 57.2 mm about the axis, neighbours 60 degrees apart (chord 57.2 mm), plane 70 mm from the lid.
    np.testing.assert_allclose(np.hypot(*(centres[:, :2] - axis[:2]).T), 57.2, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(np.diff(centres, axis=0), axis=1), 57.2, atol=1e-9)
    np.testing.assert_allclose(centres[:, 2], axis[2] + 90.0 - 70.0, atol=1e-9)
    voxel_ml = 4.42**3 / 1000.0
    for sphere, volume in zip(iec.spheres, (0.5236, 1.1503, 2.5724, 5.5753, 11.4940, 26.5209), strict=True):
        assert sphere.volume_ml == pytest.approx(volume, rel=1e-4)
        _, fraction = sphere_occupancy(grid, sphere.centre_mm, sphere.radius_mm)
        # 1000 sub-samples in every voxel the surface crosses: volumes within 0.3 % even at 10 mm.
        assert fraction.sum() * voxel_ml == pytest.approx(volume, rel=3e-3)
        assert _value_at(iec.concentration, sphere.centre_mm) == pytest.approx(400e3, rel=1e-6)


def test_iec_body_volume_activity_and_materials(iec):
    # Interior section: half disc r 147 + 140 x 77 rectangle + two quarter discs r 77; length 180 mm.
    area = math.pi * 147**2 / 2 + 140 * 77 + math.pi * 77**2 / 2
    assert iec.truth["interior_volume_ml"] == pytest.approx(area * 180 / 1000, rel=1e-12)
    assert iec.truth["interior_volume_ml"] == pytest.approx(9726.6, abs=0.1)  # the standard's ~9.7 L
    lung_ml = math.pi * 25.5**2 * 180 / 1000
    spheres_outer_ml = sum(math.pi * (d + 2.0) ** 3 / 6 / 1000 for d in IEC_SPHERE_DIAMETERS_MM)
    spheres_ml = sum(math.pi * d**3 / 6 / 1000 for d in IEC_SPHERE_DIAMETERS_MM)
    expected_mbq = (40e3 * (area * 180 / 1000 - lung_ml - spheres_outer_ml) + 400e3 * spheres_ml) * 1e-6
    assert iec.total_activity_mbq == pytest.approx(expected_mbq, rel=1e-9)
    voxel_ml = 4.42**3 / 1000.0
    assert sitk.GetArrayViewFromImage(iec.concentration).sum() * voxel_ml * 1e-6 == pytest.approx(
        expected_mbq, rel=2e-3)
    axis = iec.truth["axis_mm"]
    lung_point = (axis[0], axis[1], axis[2] - 40.0)
    assert _value_at(iec.concentration, lung_point) == 0.0
    assert _value_at(iec.density, lung_point) == pytest.approx(0.30, rel=1e-6)
    background_point = (axis[0] + 100.0, axis[1] - 40.0, axis[2] - 40.0)
    assert _value_at(iec.concentration, background_point) == pytest.approx(40e3, rel=1e-6)
    assert _value_at(iec.mu, background_point) == pytest.approx(MU_WATER_208, rel=1e-5)
    # Arc side (anterior, -y) reaches 147 mm from the axis, the flat side only 77 mm.
    assert _value_at(iec.concentration, (axis[0], axis[1] - 140.0, axis[2])) == pytest.approx(40e3, rel=1e-6)
    assert _value_at(iec.concentration, (axis[0], axis[1] + 84.0, axis[2])) == 0.0


def test_sphere_to_background_ratio_is_the_fill_ratio(grid):
    low = nema_iec_body_phantom(grid, background_bq_per_ml=20e3, sphere_to_background=4.0)
    centre = low.spheres[-1].centre_mm
    assert _value_at(low.concentration, centre) / 20e3 == pytest.approx(4.0, rel=1e-9)


def test_bad_phantom_inputs_are_refused(grid):
    with pytest.raises(ValueError, match="activity"):
        uniform_cylinder_phantom(grid, activity_mbq=0.0)
    with pytest.raises(ValueError, match="angles"):
        nema_iec_body_phantom(grid, sphere_diameters_mm=(10.0, 13.0), sphere_angles_deg=(0.0,))
    oblique = sitk.Image(grid)
    oblique.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="identity direction"):
        uniform_cylinder_phantom(oblique)
