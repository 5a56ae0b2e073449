"""Counting noise of a reconstructed SPECT, measured from the image itself, and of a region mean.

The noise of an OSEM reconstruction is spatially correlated (the reconstruction and any
post-filter spread each projection count over neighbouring voxels), so the standard
deviation of a region's mean is not the voxel SD over sqrt(N). It is measured in a region
of uniform true activity (non-tumour liver beyond a margin from every lesion; the background
of a phantom):

1. residuals r = image - a linear trend in x, y and z fitted inside the region (slow trends
   such as a depth-dependent attenuation-correction bias do not count as noise; a low-order
   trend, unlike a local mean, does not make the residuals anticorrelated);
2. the voxel SD sigma of the residuals and their autocorrelation at voxel lags k up to a few
   voxels (masked, via FFT), keeping only the lags whose correlation stands out of its sampling
   noise (more than 4 / sqrt(number of voxel pairs), at least 50 pairs): summed over hundreds of
   lags, the noise of the insignificant ones would otherwise enter every variance;
3. the variance of the weighted mean of any region R with weights w:
   var = sigma_R^2 sum_ij w_i w_j rho(i - j) / (sum w)^2 (one small correlation per region).

The SD at another activity level m scales as sigma_R = sigma (m / m_ref)^p. For ML-EM and OSEM
images the noise is close to multiplicative (SD proportional to the mean, p = 1; Barrett,
Wilson & Tsui, Phys Med Biol 1994;39:833-846); a site calibration measures p from phantom
regions of different activity (:func:`noise_exponent`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

DEFAULT_NOISE_EXPONENT = 1.0
DEFAULT_MAX_LAG_VOXELS = 4
_SIGNIFICANCE = 4.0
_MIN_PAIRS = 50


@dataclass(frozen=True)
class NoiseModel:
    """Voxel noise and its correlation, measured in a uniform region of one image.

    Attributes
    ----------
    voxel_sd : float
        Voxel standard deviation at ``reference_level`` (image units).
    reference_level : float
        Mean of the measuring region (image units).
    correlation : numpy.ndarray
        Autocorrelation rho(k) for lags k in [-L, L]^3 voxels (z, y, x), rho(0) = 1.
    exponent : float
        SD at level m = voxel_sd (m / reference_level)^exponent.
    n_voxels : int
        Voxels the model was measured on.
    """

    voxel_sd: float
    reference_level: float
    correlation: np.ndarray
    exponent: float = DEFAULT_NOISE_EXPONENT
    n_voxels: int = 0

    def voxel_sd_at(self, level: float) -> float:
        """Voxel SD at activity level ``level`` (same units as the image)."""
        if not (level > 0 and self.reference_level > 0):
            return self.voxel_sd
        return self.voxel_sd * (level / self.reference_level) ** self.exponent

    @property
    def correlation_volume_voxels(self) -> float:
        """Sum of the autocorrelation (voxels).

        A region much larger than the correlation length has var(mean) = sigma^2 x this / N.
        At least 1 (uncorrelated voxels): OSEM noise is anticorrelated at some lags, and where the
        thresholded kernel of a small region sums below 1 (or below 0) the sum is sampling noise,
        not a region mean known better than from independent voxels.
        """
        return max(float(self.correlation.sum()), 1.0)

    def sd_of_mean(self, weights: np.ndarray, level: float) -> float:
        """Standard deviation of the weighted mean of a region at ``level``.

        ``weights`` is a (z, y, x) array of the region's occupancy (zero outside), e.g. a box
        around it; lags reaching outside the array count as outside the region.
        """
        w = np.asarray(weights, dtype=float)
        total = w.sum()
        if total <= 0:
            return math.nan
        lag = np.array(self.correlation.shape) // 2
        padded = np.pad(w, [(int(k), int(k)) for k in lag])
        smoothed = ndimage.correlate(padded, self.correlation, mode="constant")
        inner = tuple(slice(int(k), int(k) + n) for k, n in zip(lag, w.shape, strict=True))
        quadratic = float(np.sum(w * smoothed[inner]))
        return self.voxel_sd_at(level) * math.sqrt(max(quadratic, 0.0)) / total

    def sd_of_region_mean(self, voxels: np.ndarray, weights: np.ndarray | None, shape, level: float) -> float:
        """:meth:`sd_of_mean` of a region given by flat (z, y, x) voxel indices on a grid of ``shape``."""
        voxels = np.asarray(voxels, dtype=np.int64)
        if voxels.size == 0:
            return math.nan
        index = np.unravel_index(voxels, shape)
        low = [int(i.min()) for i in index]
        box = np.zeros([int(i.max()) - lo + 1 for i, lo in zip(index, low, strict=True)])
        box[tuple(i - lo for i, lo in zip(index, low, strict=True))] = 1.0 if weights is None else weights
        return self.sd_of_mean(box, level)

    def to_json_dict(self) -> dict:
        """Summary for records (the correlation volume, not the whole kernel)."""
        return {"voxel_sd": self.voxel_sd, "reference_level": self.reference_level,
                "correlation_volume_voxels": self.correlation_volume_voxels, "exponent": self.exponent,
                "n_voxels": self.n_voxels, "max_lag_voxels": int(self.correlation.shape[0] // 2)}


def linear_trend_residuals(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` minus its least-squares linear trend in the voxel indices over ``mask`` (0 outside)."""
    index = np.nonzero(mask)
    design = np.column_stack([np.ones(index[0].size), *[i.astype(float) for i in index]])
    values = image[index]
    coefficients = np.linalg.lstsq(design, values, rcond=None)[0]
    residual = np.zeros(image.shape)
    residual[index] = values - design @ coefficients
    return residual


def estimate_noise(image: np.ndarray, mask: np.ndarray, spacing_zyx_mm, *,
                   max_lag_voxels: int = DEFAULT_MAX_LAG_VOXELS,
                   exponent: float = DEFAULT_NOISE_EXPONENT) -> NoiseModel:
    """Measure voxel noise and its autocorrelation in a region of uniform true activity.

    Parameters
    ----------
    image : numpy.ndarray
        (z, y, x) image values.
    mask : numpy.ndarray
        Boolean (z, y, x) region of uniform true activity (at least a few hundred voxels).
    spacing_zyx_mm : sequence
        Voxel spacing.
    max_lag_voxels : int
        Largest lag of the autocorrelation kernel (per axis).
    exponent : float
        Level dependence of the SD recorded in the model (see the module notes).

    Raises
    ------
    ValueError
        A region too small to measure noise in (fewer than 50 voxels).
    """
    mask = np.asarray(mask, dtype=bool)
    n = int(mask.sum())
    if n < 50:
        raise ValueError(f"noise needs a uniform region of at least 50 voxels; got {n}")
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    values = np.asarray(image, dtype=float)[box]
    inside = mask[box]
    residual = linear_trend_residuals(values, inside)
    level = float(values[inside].mean())
    variance = float(np.sum(residual**2) / n)
    # Masked autocorrelation by FFT: sum over pairs inside the region / number of such pairs.
    shape = [fft.next_fast_len(s + max_lag_voxels) for s in residual.shape]
    spectrum = fft.rfftn(residual, shape)
    pairs = fft.rfftn(inside.astype(float), shape)
    products = fft.irfftn(spectrum * np.conj(spectrum), shape)
    counts = fft.irfftn(pairs * np.conj(pairs), shape)
    lags = np.arange(-max_lag_voxels, max_lag_voxels + 1)
    index = np.ix_(*[lags % s for s in shape])
    with np.errstate(invalid="ignore", divide="ignore"):
        measured = np.nan_to_num(products[index] / np.maximum(counts[index], 1.0) / variance)
    # Keep the correlations that stand out of their sampling noise (SD ~ 1 / sqrt(pairs)): 4 SDs, so that among
    # the 728 lags of the kernel a false one turns up about once in twenty regions; lags seen by few pairs
    # are left out.
    pairs = np.round(counts[index])
    significant = (np.abs(measured) > _SIGNIFICANCE / np.sqrt(np.maximum(pairs, 1.0))) & (pairs >= _MIN_PAIRS)
    correlation = np.where(significant, measured, 0.0)
    correlation[max_lag_voxels, max_lag_voxels, max_lag_voxels] = 1.0
    return NoiseModel(math.sqrt(variance), level, correlation, exponent, n)


def noise_exponent(levels: Sequence[float], sds: Sequence[float]) -> float:
    """Exponent p of SD proportional to level^p from regions of different activity (log-log least squares).

    Clipped to [0.5, 1.5]: between Poisson-like (p = 1/2) and beyond multiplicative noise.
    """
    level = np.log(np.asarray(levels, dtype=float))
    sd = np.log(np.asarray(sds, dtype=float))
    if level.size < 2 or np.ptp(level) < 0.1:
        return DEFAULT_NOISE_EXPONENT
    slope = float(np.polyfit(level, sd, 1)[0])
    return float(np.clip(slope, 0.5, 1.5))
