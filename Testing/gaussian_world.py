"""Phantom scans in a Gaussian-blur world, shared by the calibration tests (cached per session).

A SPECT here is the exact voxel-averaged truth of a phantom blurred by a Gaussian of FWHM_MM and
given Poisson counting noise (:func:`luprrt.phantom.imaging.simulate_spect`): recovery has closed
forms to check against, unlike the OSEM fixture of the acceptance test. Seeds are fixed and used
by nothing else.
"""

from __future__ import annotations

import functools

import numpy as np

from luprrt.calibration import SiteInfo, build_site_calibration, measure_iec_phantom
from luprrt.phantom import nema_iec_body_phantom, phantom_grid, uniform_cylinder_phantom
from luprrt.phantom.imaging import simulate_spect

FWHM_MM = 10.0
SPACING_MM = 4.42
BACKGROUND_BQ_PER_ML = 40e3
COUNTS_PER_MBQ = 2.0e4
# The phantom sits off-centre, its ring turned by 23 degrees, its sizes running the other way round.
AXIS_MM = (6.0, 27.0, -4.0)
ANGLES_DEG = tuple(23.0 - a for a in (0.0, 60.0, 120.0, 180.0, 240.0, 300.0))


@functools.cache
def iec_grid():
    return phantom_grid(SPACING_MM, (340.0, 270.0, 230.0))


@functools.cache
def iec_scan(ratio: float, noise: bool = True):
    """(phantom truth, simulated SPECT in Bq/mL) of the IEC phantom at sphere-to-background ``ratio``."""
    grid = iec_grid()
    phantom = nema_iec_body_phantom(grid, background_bq_per_ml=BACKGROUND_BQ_PER_ML, sphere_to_background=ratio,
                                    axis_mm=AXIS_MM, sphere_angles_deg=ANGLES_DEG)
    rng = np.random.default_rng(int(1000 * ratio)) if noise else None
    return phantom, simulate_spect(phantom.concentration, grid, fwhm_mm=FWHM_MM, counts_per_mbq=COUNTS_PER_MBQ,
                                   rng=rng)


@functools.cache
def iec_measurement(ratio: float):
    _, image = iec_scan(ratio)
    return measure_iec_phantom(image, BACKGROUND_BQ_PER_ML * ratio, BACKGROUND_BQ_PER_ML, source=f"iec_{ratio:g}to1")


@functools.cache
def site_calibration():
    """The site calibration of the Gaussian world: IEC phantoms at 4:1 and 10:1."""
    info = SiteInfo(site="Gaussian world", camera="simulated", collimator="none",
                    reconstruction=f"truth blurred by a {FWHM_MM:g} mm Gaussian, Poisson noise",
                    resolution_recovery=False, date="2024-05-06", performed_by="pytest")
    return build_site_calibration(info, phantoms=[iec_measurement(4.0), iec_measurement(10.0)])


@functools.cache
def cylinder_scan(activity_mbq: float = 800.0, counts_per_mbq: float = 360.0):
    """(phantom, simulated SPECT in Bq/mL, expected counts per voxel per Bq/mL) of the uniform cylinder."""
    grid = phantom_grid(SPACING_MM, (300.0, 300.0, 280.0))
    phantom = uniform_cylinder_phantom(grid, activity_mbq=activity_mbq)
    image = simulate_spect(phantom.concentration, grid, fwhm_mm=FWHM_MM, counts_per_mbq=counts_per_mbq,
                           rng=np.random.default_rng(77))
    gain = float(np.prod(grid.GetSpacing())) / 1000.0 * 1e-6 * counts_per_mbq
    return phantom, image, gain
