"""The OSEM SPECT simulator: its torch-free bookkeeping always, its projector and OSEM where the sim extra is installed.

Closed forms used as truth: a point source in air gives counts_per_mbq_per_view x activity in
every view; behind d cm of water its primary counts fall by exp(-mu d); the TEW estimate of a
known scatter has that scatter as expectation; calibration factor = counts / (A x T).
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.grid import image_on_grid
from luprrt.phantom.osem import (
    Acquisition,
    acquire,
    calibration_factor_cps_per_mbq,
    counts_to_bq_per_ml,
    simulation_grids,
    tew_scatter_estimate,
)
from luprrt.phantom.spect_camera import SpectProtocol

HAVE_SIM = all(importlib.util.find_spec(m) is not None for m in ("torch", "pytomography"))
needs_sim = pytest.mark.skipif(not HAVE_SIM, reason="needs the optional `sim` extra (torch, pytomography): "
                                                    "pip install -e '.[sim]' or make sim-data")
MU_WATER_PER_CM = 0.1370 * (0.1186 / 0.1370) ** (math.log(208.366 / 200.0) / math.log(1.5))


def test_grids_share_extent_and_bin_exactly():
    grids = simulation_grids((300.0, 240.0, 200.0), 4.42, 2)
    assert grids.recon.GetSize() == (68, 68, 46)  # square, even: ceil(300 / 4.42) = 68
    assert grids.fine.GetSize() == (136, 136, 92)
    for grid in (grids.recon, grids.fine):
        lo = np.asarray(grid.GetOrigin()) - np.asarray(grid.GetSpacing()) / 2
        np.testing.assert_allclose(lo, -np.asarray(grid.GetSize()) * grid.GetSpacing()[0] / 2, atol=1e-9)
    assert grids.fine.GetSpacing()[0] == pytest.approx(2.21)


def test_calibration_factor_and_conversion_to_bq_per_ml_are_inverse():
    grid = simulation_grids((40.0, 40.0, 40.0), 4.42, 2).recon
    counts = image_on_grid(np.full(sitk.GetArrayViewFromImage(grid).shape, 30.0, np.float32), grid)
    n = counts.GetNumberOfPixels()
    assert calibration_factor_cps_per_mbq(counts, 2.0, 1200.0) == pytest.approx(30.0 * n / (2.0 * 1200.0))
    concentration = counts_to_bq_per_ml(counts, 15.0, 1200.0)
    # 30 counts / (15 cps/MBq x 1200 s) = 1/600 MBq in a 4.42^3 mm voxel (0.08635 mL).
    assert float(concentration[0, 0, 0]) == pytest.approx(1e6 / 600.0 / (4.42**3 / 1000.0), rel=1e-6)
    with pytest.raises(ValueError, match="positive"):
        calibration_factor_cps_per_mbq(counts, 0.0, 1200.0)


def test_tew_estimate_is_unbiased_for_the_simulated_scatter():
    protocol = SpectProtocol()
    scatter = np.full((120, 20, 10), 40.0)
    primary = np.full_like(scatter, 100.0)
    acquisitions = [acquire(primary, scatter, np.full(120, 200.0), protocol, np.random.default_rng(k))
                    for k in range(3)]
    for acquisition in acquisitions:
        assert isinstance(acquisition, Acquisition)
        assert acquisition.scatter_fraction == pytest.approx(40.0 / 140.0)
    estimate = np.mean([tew_scatter_estimate(a) for a in acquisitions])
    # 3 x 24000 pixels of lower-window counts with mean 40 x 2 x 12.6 / 41.6 = 24.2: SE ~0.08 %.
    assert estimate == pytest.approx(40.0, rel=5e-3)
    photopeak = np.mean([a.photopeak.mean() for a in acquisitions])
    assert photopeak == pytest.approx(140.0, rel=3e-3)


@needs_sim
def test_small_source_in_air_and_behind_water_gives_the_closed_form_counts():
    from luprrt.phantom.osem import expected_projections

    protocol = SpectProtocol(recon_voxel_mm=8.84, n_views=8, subsets=2, orbit="circular",
                             circular_radius_mm=200.0)
    # 141 mm across, 141 mm long: the collimator blur (sigma < 9 mm) stays inside the axial range.
    grids = simulation_grids((141.44, 141.44, 141.44), protocol.recon_voxel_mm, 2)
    fine = grids.fine
    shape = sitk.GetArrayViewFromImage(fine).shape
    z, y, x = (np.arange(n) - (n - 1) / 2.0 for n in shape)
    # A 1 MBq ball of radius 15 mm (7 fine voxels across; a ball of one or two voxels would show the
    # rotate-and-sum projector's bilinear interpolation, a few per cent at 45 degrees, not physics).
    step = fine.GetSpacing()[0]
    ball = (z[:, None, None] ** 2 + y[None, :, None] ** 2 + x[None, None, :] ** 2) * step**2 < 15.0**2
    voxel_ml = step**3 / 1000.0
    source = image_on_grid((ball * 1e6 / (ball.sum() * voxel_ml)).astype(np.float32), fine)
    air = image_on_grid(np.zeros(shape, np.float32), fine)
    primary, scatter, _ = expected_projections(source, air, grids, protocol)
    # In air: every view sees counts_per_mbq_per_view x 1 MBq, no scatter (no build-up without matter).
    np.testing.assert_allclose(primary.sum(axis=(1, 2)), protocol.counts_per_mbq_per_view, rtol=0.01)
    assert scatter.sum() == 0.0
    # In the middle of a water cylinder of radius 50 mm, the photons cross 50 mm of water on average
    # (from the ball's points: 50 mm - the offset along the view, which averages out to second order).
    inside = (y[:, None] ** 2 + x[None, :] ** 2) * step**2 < 50.0**2
    water = image_on_grid(np.broadcast_to(inside * MU_WATER_PER_CM, shape).astype(np.float32), fine)
    primary_w, scatter_w, _ = expected_projections(source, water, grids, protocol)
    transmission = primary_w.sum() / primary.sum()
    assert transmission == pytest.approx(math.exp(-MU_WATER_PER_CM * 5.0), rel=0.03)
    # Build-up scatter: exp(-0.8 mu d) - exp(-mu d) relative to the primary = exp(0.2 mu d) - 1 ~ 0.145.
    assert scatter_w.sum() / primary_w.sum() == pytest.approx(math.expm1(0.2 * MU_WATER_PER_CM * 5.0), rel=0.05)


@needs_sim
def test_osem_recovers_a_uniform_cylinders_activity():
    from luprrt.phantom.calibration_phantoms import uniform_cylinder_phantom
    from luprrt.phantom.osem import recon_mu_from_ct, simulate_osem_scan

    protocol = SpectProtocol(recon_voxel_mm=8.84, n_views=24, subsets=4, iterations=4)
    grids = simulation_grids((176.8, 176.8, 70.72), protocol.recon_voxel_mm, 2)
    truth = uniform_cylinder_phantom(grids.fine, activity_mbq=500.0, inner_diameter_mm=120.0,
                                     inner_length_mm=40.0)
    site = uniform_cylinder_phantom(grids.recon, activity_mbq=500.0, inner_diameter_mm=120.0, inner_length_mm=40.0)
    scan = simulate_osem_scan(truth.concentration, truth.mu, recon_mu_from_ct(site.ct, grids.recon, 208.366),
                              grids, protocol, np.random.default_rng(5))
    # Attenuation- and scatter-corrected counts over the acquisition, per MBq and second, are the in-air
    # sensitivity of both heads: 2 x 150 counts / (MBq view) / 20 s = 15 cps/MBq, within ~5 % (noise,
    # the coarse recon grid's attenuation map, OSEM's non-negativity bias).
    factor = calibration_factor_cps_per_mbq(scan.counts, 500.0, protocol.acquisition_duration_s)
    assert factor == pytest.approx(2 * protocol.counts_per_mbq_per_view / protocol.time_per_view_s, rel=0.05)
    assert 0.05 < scan.acquisition.scatter_fraction < 0.25
