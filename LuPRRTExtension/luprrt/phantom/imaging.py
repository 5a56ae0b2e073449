"""Imaging physics of the synthetic patient: SPECT from the true activity map, and baseline PET/ADC maps.

SPECT = true partial-volume averaging of the fine (CT-grid) activity concentration
into the coarse SPECT voxels (exact box overlaps, separable per axis), a Gaussian
camera resolution blur, and Poisson counting noise. Each step conserves activity
(the SPECT grid has a blur margin around the CT field of view).
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

# FWHM = 2 sqrt(2 ln 2) sigma for a Gaussian.
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
# Gaussian kernels are cut at this many sigma (scipy's default truncate).
TRUNCATE_SIGMA = 4.0
# Baseline PET SUV and MRI ADC (mm2/s) per kinetic region: illustrative values of the order seen in
# NET patients (FDG liver SUV ~2, 68Ga-DOTATATE spleen SUV ~20-30 and liver ~5-10, liver ADC ~1.3e-3).
BASELINE_MAPS = {
    "FDG": {"remainder": 0.8, "nontumour": 2.2, "kidney": 2.5, "spleen": 1.9, "marrow": 1.6, "blood": 1.7},
    "GA68": {"remainder": 0.5, "nontumour": 7.0, "kidney": 12.0, "spleen": 25.0, "marrow": 1.5, "blood": 1.0},
    "ADC": {"remainder": 1.4e-3, "nontumour": 1.3e-3, "kidney": 2.0e-3, "spleen": 0.8e-3, "marrow": 0.6e-3,
            "blood": 2.5e-3},
}


def _check_axis_aligned(image: sitk.Image, what: str) -> None:
    if not np.allclose(image.GetDirection(), np.eye(3).ravel(), atol=1e-9):
        raise ValueError(f"{what} must have an identity direction matrix (axial, LPS); "
                         f"got {image.GetDirection()}")


def spect_grid(ct_reference: sitk.Image, spacing_mm: float, fwhm_mm: float) -> sitk.Image:
    """An empty float32 SPECT grid (cubic ``spacing_mm`` voxels) covering the CT field of view.

    The grid is centred on the CT field of view and extends it on every side by the
    blur kernel's reach (4 sigma), so blurring loses no activity at the edges.
    """
    _check_axis_aligned(ct_reference, "the CT grid")
    if spacing_mm <= 0:
        raise ValueError(f"SPECT voxel size must be positive, got {spacing_mm} mm")
    ct_spacing = np.asarray(ct_reference.GetSpacing())
    ct_size = np.asarray(ct_reference.GetSize())
    ct_lo = np.asarray(ct_reference.GetOrigin()) - ct_spacing / 2
    extent = ct_size * ct_spacing
    margin = TRUNCATE_SIGMA * fwhm_mm / FWHM_PER_SIGMA
    size = np.ceil((extent + 2 * margin) / spacing_mm).astype(int)
    origin = ct_lo + extent / 2 - size * spacing_mm / 2 + spacing_mm / 2
    grid = sitk.Image([int(n) for n in size], sitk.sitkFloat32)
    grid.SetSpacing([float(spacing_mm)] * 3)
    grid.SetOrigin([float(v) for v in origin])
    return grid


def _overlap_matrix(fine_lo: float, fine_step: float, n_fine: int, coarse_lo: float, coarse_step: float,
                    n_coarse: int) -> np.ndarray:
    """(n_coarse, n_fine) matrix: length of overlap of each coarse and fine interval / coarse step."""
    fine_edges = fine_lo + fine_step * np.arange(n_fine + 1)
    coarse_edges = coarse_lo + coarse_step * np.arange(n_coarse + 1)
    lo = np.maximum(coarse_edges[:-1, None], fine_edges[None, :-1])
    hi = np.minimum(coarse_edges[1:, None], fine_edges[None, 1:])
    return np.clip(hi - lo, 0.0, None) / coarse_step


def partial_volume_average(fine: sitk.Image, coarse: sitk.Image) -> np.ndarray:
    """Mean of ``fine`` over each voxel box of the ``coarse`` grid (z, y, x array, float64).

    The exact volume-weighted average of a piecewise-constant image: each coarse voxel
    gets sum_j overlap_j x value_j / coarse voxel volume, where overlap_j is the volume
    shared with fine voxel j (a product of per-axis interval overlaps, applied as three
    small matrix products). Space outside the fine image counts as zero.
    """
    _check_axis_aligned(fine, "the fine image")
    _check_axis_aligned(coarse, "the coarse grid")
    matrices = []
    for axis in range(3):
        fs, cs = fine.GetSpacing()[axis], coarse.GetSpacing()[axis]
        matrices.append(_overlap_matrix(fine.GetOrigin()[axis] - fs / 2, fs, fine.GetSize()[axis],
                                        coarse.GetOrigin()[axis] - cs / 2, cs, coarse.GetSize()[axis]))
    wx, wy, wz = matrices
    values = sitk.GetArrayViewFromImage(fine).astype(np.float64)
    nz, ny, nx = values.shape
    # Three plain 2D matrix products (BLAS), moving the reduced axis last each time.
    out = values.reshape(nz * ny, nx) @ wx.T  # (nz * ny, NX)
    out = np.ascontiguousarray(out.reshape(nz, ny, -1).transpose(0, 2, 1)).reshape(-1, ny)
    out = out @ wy.T  # (nz * NX, NY)
    out = wz @ out.reshape(nz, -1)  # (NZ, NX * NY)
    return np.ascontiguousarray(out.reshape(wz.shape[0], wx.shape[0], wy.shape[0]).transpose(0, 2, 1))


def camera_blur(values: np.ndarray, spacing_mm, fwhm_mm: float) -> np.ndarray:
    """Isotropic Gaussian resolution blur with ``fwhm_mm`` (per-axis sigma in voxels; counts conserved)."""
    if fwhm_mm < 0:
        raise ValueError(f"blur FWHM must be >= 0, got {fwhm_mm} mm")
    if fwhm_mm == 0:
        return values.copy()
    sigma_vox = [fwhm_mm / FWHM_PER_SIGMA / s for s in spacing_mm]
    return ndimage.gaussian_filter(values, sigma=sigma_vox, mode="constant", truncate=TRUNCATE_SIGMA)


def counts_per_bq_per_ml(spect: sitk.Image, counts_per_mbq: float) -> float:
    """Expected detected counts in one SPECT voxel per Bq/mL of activity concentration in it."""
    voxel_ml = float(np.prod(spect.GetSpacing())) / 1000.0
    return voxel_ml * 1e-6 * counts_per_mbq


def simulate_spect(concentration: sitk.Image, spect_reference: sitk.Image, *, fwhm_mm: float,
                   counts_per_mbq: float, rng: np.random.Generator | None) -> sitk.Image:
    """Quantitative SPECT (Bq/mL, float32) of a true activity-concentration map.

    Parameters
    ----------
    concentration : sitk.Image
        True activity concentration (Bq/mL) on the fine (CT) grid.
    spect_reference : sitk.Image
        The SPECT grid (e.g. from :func:`spect_grid`).
    fwhm_mm : float
        System resolution FWHM (mm) of the reconstructed image.
    counts_per_mbq : float
        Detected counts per MBq over the acquisition (sensitivity x duration); sets the
        Poisson noise level.
    rng : numpy.random.Generator or None
        Noise source; None gives the expected (noise-free) image exactly.
    """
    if counts_per_mbq <= 0:
        raise ValueError(f"counts per MBq must be positive, got {counts_per_mbq}")
    expected = camera_blur(partial_volume_average(concentration, spect_reference),
                           spect_reference.GetSpacing()[::-1], fwhm_mm)
    if rng is not None:
        gain = counts_per_bq_per_ml(spect_reference, counts_per_mbq)
        expected = rng.poisson(expected * gain) / gain
    image = sitk.GetImageFromArray(expected.astype(np.float32))
    image.CopyInformation(spect_reference)
    return image


def blurred_map(values: np.ndarray, reference: sitk.Image, fwhm_mm: float) -> sitk.Image:
    """A float32 image on ``reference``'s grid from ``values`` blurred with ``fwhm_mm``."""
    image = sitk.GetImageFromArray(camera_blur(values.astype(np.float64), reference.GetSpacing()[::-1],
                                               fwhm_mm).astype(np.float32))
    image.CopyInformation(reference)
    return image
