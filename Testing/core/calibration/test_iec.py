"""The IEC phantom found and measured in a Gaussian-blur world (Testing/gaussian_world.py).

Truths: the sphere centres the phantom module placed; the recovery of each sphere in the noise-free
blurred image at the true centres (the expectation of the noisy measurement).
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from gaussian_world import BACKGROUND_BQ_PER_ML, cylinder_scan, iec_measurement, iec_scan

from luprrt.calibration import measure_iec_phantom
from luprrt.phantom import sphere_occupancy


def test_spheres_are_found_on_a_turned_mirrored_phantom():
    phantom, _ = iec_scan(4.0)
    measured = iec_measurement(4.0)
    truth = np.array([s.centre_mm for s in phantom.spheres])
    found = np.array([s.centre_mm for s in measured.spheres])
    # Registration of the rigid ring: every centre within 1 mm (a quarter voxel) of the truth.
    assert np.linalg.norm(found - truth, axis=1).max() < 1.0
    assert measured.pose.handedness == -1  # sizes run the other way round than the catalogue


@pytest.mark.parametrize("ratio", [4.0, 10.0])
def test_recovery_matches_the_noise_free_expectation(ratio):
    phantom, _ = iec_scan(ratio)
    _, expected_image = iec_scan(ratio, noise=False)
    values = sitk.GetArrayFromImage(expected_image)
    measured = iec_measurement(ratio)
    assert measured.measured_background_bq_per_ml == pytest.approx(BACKGROUND_BQ_PER_ML, rel=0.005)
    for sphere, truth in zip(measured.spheres, phantom.spheres, strict=True):
        box, fraction = sphere_occupancy(expected_image, truth.centre_mm, truth.radius_mm)
        mean = float(np.sum(fraction * values[box]) / fraction.sum())
        contrast = (mean / BACKGROUND_BQ_PER_ML - 1.0) / (ratio - 1.0)
        # Counting noise (3 SD) plus 0.01 for the registration's sub-millimetre offsets.
        assert sphere.contrast_recovery == pytest.approx(contrast, abs=3 * sphere.contrast_recovery_sd + 0.01)
        assert sphere.rc_mean == pytest.approx(mean / (ratio * BACKGROUND_BQ_PER_ML), abs=3 * sphere.rc_mean_sd + 0.01)
    assert np.all(np.diff([s.contrast_recovery for s in measured.spheres]) > 0)  # recovery grows with size


def test_bad_phantom_images_get_clear_errors():
    _, image = iec_scan(4.0)
    with pytest.raises(ValueError, match="wrong image units"):
        measure_iec_phantom(image * 1000.0, 160e3, 40e3)
    with pytest.raises(ValueError, match="missing or not positive"):
        measure_iec_phantom(image, None, 40e3)
    with pytest.raises(ValueError, match="not above the background"):
        measure_iec_phantom(image, 40e3, 40e3)
    with pytest.raises(ValueError, match="empty"):
        measure_iec_phantom(image * 0.0, 160e3, 40e3)
    _, cylinder, _ = cylinder_scan()
    level = float(np.median(sitk.GetArrayViewFromImage(cylinder)[sitk.GetArrayViewFromImage(cylinder) > 1e4]))
    with pytest.raises(ValueError, match=r"spheres were not found|IEC phantom"):
        measure_iec_phantom(cylinder, 4 * level, level)
