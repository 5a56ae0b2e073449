"""Voxel-wise time-integrated activity from serial quantitative SPECT, in closed form.

Every voxel gets a mono-exponential ``A(t) = A0 exp(-lambda t)`` fitted by weighted linear
least squares on ``ln A`` (the normal equations solved for all voxels at once), with
the effective decay constant floored at the physical one: no voxel may clear slower than
physical decay (``lambda_eff >= lambda_phys``). Where the floor applies, ``ln A0`` is
re-fitted with lambda fixed at lambda_phys (the constrained least-squares solution).

Two integrations (``integration=``):

* ``"analytic"``: TIA = A0 / lambda_eff, the integral of the fitted exponential from 0
  to infinity (exact for mono-exponential kinetics);
* ``"trapezoid"``: the measured concentrations joined by straight lines from t = 0
  (``head="linear"``: A(0) = 0; ``"flat"``: A(0) = A(t1); as in :mod:`.tac`), plus the
  analytic tail ``A(t_n) / lambda_eff`` from the last measured value. This follows the
  data between scans and uses the fit only for the extrapolation.

Non-positive values (noise, background) carry no information on ln A: they get zero
weight in the fit and count as 0 in the trapezoid. Voxels with no positive value get
TIA = 0; voxels with a single positive value get lambda_eff = lambda_phys.

Weights (``weighting=``): ``"poisson"`` (default) w_i = A_i, the inverse variance of
ln A_i for counting noise (var A ~ A, so var ln A ~ 1/A); ``"uniform"`` w_i = 1.

Input concentrations are Bq/mL; the TIA image is Bq h/mL (float32). Voxels are processed
in chunks of float64 so that memory stays bounded for 256^3 and larger grids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..grid import image_on_grid, require_same_grid
from ..physics import LU177_HALF_LIFE_H
from ..provenance import ProgressCallback, no_progress
from .tac import HEADS, check_scan_times_h, trapezoid_weights_h

INTEGRATIONS = ("analytic", "trapezoid")
WEIGHTINGS = ("poisson", "uniform")
_CHUNK_VOXELS = 1 << 19


@dataclass(frozen=True)
class VoxelTimeIntegratedActivity:
    """Result of :func:`voxel_time_integrated_activity`.

    Attributes
    ----------
    tia_bq_h_per_ml : SimpleITK.Image
        Time-integrated activity concentration (Bq h/mL), float32, on the input grid.
    lambda_eff_per_h : SimpleITK.Image
        Effective decay constant used per voxel (1/h), >= physical; physical where TIA = 0.
    floored_voxel_count : int
        Voxels whose fitted lambda was below physical decay and was raised to it.
    empty_voxel_count : int
        Voxels with no positive value (TIA = 0).
    """

    tia_bq_h_per_ml: sitk.Image
    lambda_eff_per_h: sitk.Image
    floored_voxel_count: int
    empty_voxel_count: int


def voxel_time_integrated_activity(images_bq_per_ml: list[sitk.Image], times_h, integration: str = "analytic",
                                   weighting: str = "poisson", head: str = "linear",
                                   half_life_h: float = LU177_HALF_LIFE_H,
                                   progress: ProgressCallback | None = None) -> VoxelTimeIntegratedActivity:
    """Voxel-wise time-integrated activity (Bq h/mL) of serial activity-concentration images.

    Parameters
    ----------
    images_bq_per_ml : list of SimpleITK.Image
        Activity concentration (Bq/mL, not decay-corrected) at each time; one grid.
    times_h : array_like
        Acquisition times after administration (h), strictly increasing, >= 0.
    integration : ``"analytic"`` or ``"trapezoid"``
    weighting : ``"poisson"`` or ``"uniform"``
    head : ``"linear"`` or ``"flat"`` (trapezoid only)
    half_life_h : float
        Physical half-life (h), Lu-177 by default.
    progress : callable, optional
        ``progress(fraction, message)``.

    Raises
    ------
    ValueError
        Fewer than 2 images, times not matching/increasing, images on different grids, or
        an unknown option (the message names it).
    """
    progress = progress or no_progress
    t = _validated_times(times_h, len(images_bq_per_ml))
    if integration not in INTEGRATIONS:
        raise ValueError(f"unknown integration {integration!r}; expected one of {INTEGRATIONS}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; expected one of {WEIGHTINGS}")
    if head not in HEADS:
        raise ValueError(f"unknown trapezoid head {head!r}; expected one of {HEADS}")
    if not (math.isfinite(half_life_h) and half_life_h > 0):
        raise ValueError(f"physical half-life must be positive, got {half_life_h} h")
    _require_one_grid(images_bq_per_ml)
    lambda_phys = math.log(2.0) / half_life_h
    # Centre the times: keeps the normal equations well conditioned (t ~ 100 h, t^2 ~ 1e4).
    t_mean = float(t.mean())
    tc = t - t_mean
    trapezoid_w = trapezoid_weights_h(t, head)
    views = [sitk.GetArrayViewFromImage(image).reshape(-1) for image in images_bq_per_ml]
    n_voxels = views[0].size
    tia = np.empty(n_voxels, dtype=np.float32)
    lam_out = np.empty(n_voxels, dtype=np.float32)
    floored = empty = 0
    for start in range(0, n_voxels, _CHUNK_VOXELS):
        stop = min(start + _CHUNK_VOXELS, n_voxels)
        a = np.stack([v[start:stop] for v in views]).astype(np.float64)  # (time, voxel)
        positive = a > 0
        log_a = np.log(np.where(positive, a, 1.0))
        w = np.where(positive, a if weighting == "poisson" else 1.0, 0.0)
        s0 = w.sum(axis=0)
        s1 = tc @ w
        s2 = (tc**2) @ w
        sy = (w * log_a).sum(axis=0)
        sty = (tc[:, None] * w * log_a).sum(axis=0)
        det = s0 * s2 - s1**2
        count = positive.sum(axis=0)
        fitted = (count >= 2) & (det > 1e-12 * np.maximum(s0 * s2, 1e-300))
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(fitted, (s0 * sty - s1 * sy) / det, 0.0)
            lam = -slope
            intercept_c = np.where(fitted, (sy - slope * s1) / s0, 0.0)  # ln A at t = t_mean
            floor = (count >= 1) & (~fitted | (lam < lambda_phys))
            # Constrained fit with lambda = lambda_phys: weighted mean of ln A + lambda_phys (t - t_mean).
            constrained = (sy + lambda_phys * s1) / s0
        lam = np.where(floor, lambda_phys, lam)
        intercept_c = np.where(floor, constrained, intercept_c)
        nonempty = count >= 1
        floored += int(np.count_nonzero(floor & fitted))
        empty += int(np.count_nonzero(~nonempty))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # empty voxels: set to 0 below
            if integration == "analytic":
                a0 = np.exp(intercept_c + lam * t_mean)
                value = a0 / lam
            else:
                value = trapezoid_w @ np.where(positive, a, 0.0) + np.where(positive[-1], a[-1], 0.0) / lam
        tia[start:stop] = np.where(nonempty, value, 0.0)
        lam_out[start:stop] = np.where(nonempty, lam, lambda_phys)
        progress(stop / n_voxels, "voxel-wise time-integrated activity")
    reference = images_bq_per_ml[0]
    shape = reference.GetSize()[::-1]
    return VoxelTimeIntegratedActivity(image_on_grid(tia.reshape(shape), reference),
                                       image_on_grid(lam_out.reshape(shape), reference), floored, empty)


def _validated_times(times_h, n_images: int) -> np.ndarray:
    t = np.asarray(times_h, dtype=float)
    if n_images < 2:
        raise ValueError(f"need at least 2 images for voxel-wise time-activity fitting, got {n_images}")
    if t.ndim != 1 or t.size != n_images:
        raise ValueError(f"{np.atleast_1d(t).size} times {np.atleast_1d(t).tolist()} h for {n_images} images")
    check_scan_times_h(t)
    return t


def _require_one_grid(images: list[sitk.Image]) -> None:
    reference = images[0]
    for index, image in enumerate(images):
        if index:
            require_same_grid(image, reference, f"image {index}", "image 0",
                              "register and resample all time points to one grid first")
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise ValueError(f"image {index} has {image.GetNumberOfComponentsPerPixel()} components; "
                             f"need a scalar image")
