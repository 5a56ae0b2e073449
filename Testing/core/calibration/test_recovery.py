"""Recovery models and curves against independent computations.

Truths: the chi distribution (the centre of a blurred sphere holds the probability that a 3D Gaussian
displacement stays within the radius), Monte Carlo self-overlap (mean recovery = probability that a
uniform point of the sphere, displaced by the Gaussian, stays inside), scipy.ndimage.gaussian_filter
of a voxel occupancy, and parameters drawn by hand for the curve fits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage, stats

from luprrt.calibration import (
    FWHM_PER_SIGMA,
    OccupancyAutocorrelation,
    fit_effective_fwhm,
    fit_recovery_curve,
    gaussian_sphere_recovery,
    grid_contrast_recovery,
    recovery_model,
)


@pytest.mark.parametrize("diameter_mm, fwhm_mm", [(10.0, 8.0), (22.0, 12.0), (37.0, 9.5)])
def test_sphere_recovery_matches_the_chi_distribution_and_monte_carlo(diameter_mm, fwhm_mm):
    radius, sigma = diameter_mm / 2.0, fwhm_mm / FWHM_PER_SIGMA
    volume = math.pi * diameter_mm**3 / 6000.0
    mean, peak = gaussian_sphere_recovery([volume], fwhm_mm)
    assert peak[0] == pytest.approx(stats.chi(3).cdf(radius / sigma), abs=1e-12)
    rng = np.random.default_rng(11)
    n = 400_000
    direction = rng.normal(size=(n, 3))
    points = direction / np.linalg.norm(direction, axis=1)[:, None] * radius * rng.random(n)[:, None] ** (1 / 3)
    moved = points + rng.normal(scale=sigma, size=(n, 3))
    inside = np.mean(np.linalg.norm(moved, axis=1) < radius)
    # Monte Carlo standard error sqrt(p (1 - p) / n) <= 0.0008: 5 of them.
    assert mean[0] == pytest.approx(inside, abs=0.004)


def test_grid_recovery_equals_blurring_the_occupancy():
    occupancy = np.zeros((21, 23, 25))
    z, y, x = np.indices(occupancy.shape)
    occupancy[((z - 10.3) * 4.0) ** 2 + ((y - 11.0) * 4.0) ** 2 + ((x - 12.4) * 3.5) ** 2 <= 15.0**2] = 1.0
    occupancy[10, 11, 8] = 0.37  # a partial voxel
    spacing = (4.0, 4.0, 3.5)
    for fwhm in (3.0, 9.0, 14.0):
        sigma = fwhm / FWHM_PER_SIGMA / np.asarray(spacing)
        blurred = ndimage.gaussian_filter(np.pad(occupancy, 40), sigma, mode="constant")[40:-40, 40:-40, 40:-40]
        expected = np.sum(occupancy * blurred) / occupancy.sum()
        assert grid_contrast_recovery(occupancy, spacing, fwhm) == pytest.approx(expected, rel=1e-9)


def test_effective_fwhm_is_recovered_from_grid_recoveries():
    spacing = (4.42, 4.42, 4.42)
    models = []
    for radius in (5.0, 6.5, 8.5, 11.0, 14.0, 18.5):
        n = int(2 * math.ceil(radius / 4.42) + 3)
        z, y, x = (np.indices((n, n, n)) - (n - 1) / 2.0) * 4.42
        models.append(OccupancyAutocorrelation((x**2 + y**2 + z**2 <= radius**2).astype(float), spacing))

    def model(fwhm):
        return np.array([m.contrast_recovery(fwhm) for m in models])

    measured = model(9.3)
    fit = fit_effective_fwhm(model, measured, np.full(measured.shape, 0.01))
    assert fit.fwhm_mm == pytest.approx(9.3, abs=2e-3)
    assert fit.rms_residual < 1e-4


def test_recovery_fit_recovers_the_parameters_and_its_uncertainty_is_calibrated():
    volumes = np.array([0.52, 1.15, 2.57, 5.58, 11.49, 26.52])
    truth = (0.85, 3.0, 1.1)
    exact = fit_recovery_curve(volumes, recovery_model(volumes, *truth))
    assert exact.parameters == pytest.approx(truth, rel=1e-5)
    # Noisy points (SD 0.01): the curve's standard uncertainty at 4 mL, J Sigma J^T, against the spread
    # of 150 refits of independently noised points (relative SE of an SD from 150 samples ~6 %).
    rng = np.random.default_rng(3)
    sd = np.full(volumes.size, 0.01)
    fits = [fit_recovery_curve(volumes, recovery_model(volumes, *truth) + rng.normal(0, 0.01, volumes.size), sd)
            for _ in range(150)]
    spread = np.std([float(f(4.0)) for f in fits])
    predicted = np.median([float(f.standard_uncertainty(4.0)) for f in fits])
    assert predicted == pytest.approx(spread, rel=0.3)


def test_too_few_spheres_are_refused():
    with pytest.raises(ValueError, match="at least 4 spheres"):
        fit_recovery_curve([1.0, 2.0, 3.0], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="positive mL"):
        fit_recovery_curve([1.0, -2.0, 3.0, 4.0], [0.2, 0.3, 0.4, 0.5])


def test_contrast_curve_towards_and_above_the_largest_sphere_is_blurred_spheres_tending_to_1():
    """Spheres that level off (a plateau below 1 fits them): towards and above the largest sphere the curve
    follows Gaussian-blurred spheres fitted to the three largest, continuous and rising to full recovery."""
    volumes = np.array([0.52, 1.15, 2.57, 5.58, 11.5, 26.5])
    # Blurred spheres at 8 mm FWHM above 2 mL, OSEM-like lower recovery of the two smallest.
    truth = gaussian_sphere_recovery(volumes, 8.0)[0]
    values = np.concatenate([[0.05, 0.25], truth[2:]])
    curve = fit_recovery_curve(volumes, values, np.full(6, 0.02), sphere_to_background=10.0)
    assert curve.large_object_fwhm_mm == pytest.approx(8.0, rel=1e-3)
    large = np.array([26.5, 40.0, 100.0, 1000.0, 1e5])
    extended = curve(large)
    np.testing.assert_allclose(extended, gaussian_sphere_recovery(large, 8.0)[0], rtol=1e-3)
    assert np.all(np.diff(extended) > 0) and extended[-1] > 0.98
    # Continuous: below the second-largest sphere the fitted sigmoid, a blend up to the largest.
    below = np.array([1.0, 5.0, 11.5])
    np.testing.assert_allclose(curve(below), recovery_model(below, *curve.parameters), rtol=1e-12)
    between = np.geomspace(11.5, 26.5, 50)
    steps = np.abs(np.diff(curve(between)))
    assert steps.max() < 0.01
    # Its uncertainty above the largest sphere: the curve's at the largest sphere scaled with the spill-out
    # 1 - CR, and the change with the large-object FWHM one SD larger (a perturbation of its own).
    sd_largest = float(curve.standard_uncertainty(26.5))
    moved = curve.large_object_perturbation()
    assert moved.large_object_fwhm_mm == pytest.approx(8.0 + curve.large_object_fit.fwhm_sd_mm, rel=1e-3)
    assert 0 < curve.large_object_fit.fwhm_sd_mm < 1.0
    np.testing.assert_allclose(curve.standard_uncertainty(large[1:]),
                               np.hypot(sd_largest * (1 - extended[1:]) / (1 - extended[0]),
                                        moved(large[1:]) - extended[1:]), rtol=1e-9)
    # Mean and max curves stay the fitted model everywhere.
    maximum = fit_recovery_curve(volumes, values, np.full(6, 0.02), quantity="max", sphere_to_background=10.0)
    assert float(maximum(100.0)) == pytest.approx(float(recovery_model(100.0, *maximum.parameters)), rel=1e-12)
