"""Apparent diffusion coefficient (ADC, mm2/s) from an ADC map or from diffusion-weighted MRI.

Mono-exponential diffusion signal (Le Bihan et al., Radiology 1988;168:497-505):

    S(b) = S0 exp(-b ADC),   b in s/mm2, ADC in mm2/s.

:func:`fit_adc` fits ln S = ln S0 - b ADC in every voxel at once by weighted linear
least squares in closed form. The weights w_i = S_i^2 undo the noise amplification of
the logarithm (var(ln S) ~ sigma^2 / S^2); see Veraart et al., NeuroImage
2013;81:335-346 for the estimator and its bias. With low b-values (< ~200 s/mm2)
the fitted ADC includes perfusion (IVIM) effects; leave them out for a pure
diffusion ADC.

Scanner ADC maps are often stored scaled: :func:`adc_map` takes the unit explicitly
("mm2/s", "1e-3 mm2/s" or "1e-6 mm2/s" = "um2/s") and refuses values that cannot be
mm2/s (above free water at 37 degC, 3.0e-3 mm2/s; Holz et al., Phys Chem Chem Phys
2000;2:4740-4742) by more than :data:`MAX_PLAUSIBLE_ADC_MM2_PER_S`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..grid import image_on_grid
from ..io import QuantitativeImage
from ..provenance import ProgressCallback, no_progress

logger = logging.getLogger(__name__)

# Accepted ADC map units -> factor to mm2/s.
ADC_UNITS: dict[str, float] = {
    "mm2/s": 1.0,
    "1e-3 mm2/s": 1e-3,
    "1e-6 mm2/s": 1e-6,
    "um2/s": 1e-6,
    "µm2/s": 1e-6,
}
# Free water at 37 degC diffuses at 3.0e-3 mm2/s (Holz et al. 2000); a median tissue ADC above
# this bound (about 3x free water) means the map is not in the unit it was declared in.
MAX_PLAUSIBLE_ADC_MM2_PER_S = 1e-2
# Default low-signal mask: voxels whose lowest-b signal is below this share of the 99th
# percentile of the lowest-b image (air, background) get no ADC.
DEFAULT_RELATIVE_MIN_SIGNAL = 0.05
# Voxels per chunk of the closed-form fit (bounds the working memory to ~ n_b x chunk x 8 bytes x 4).
_CHUNK_VOXELS = 1 << 20


@dataclass(frozen=True)
class AdcFit:
    """Voxel-wise mono-exponential fit.

    Attributes
    ----------
    adc_mm2_per_s : ADC (float64), NaN where masked
    s0 : fitted signal at b = 0 (float64, the DWI's signal unit), NaN where masked
    valid : UInt8 mask, 1 where fitted
    b_values_s_per_mm2 : the b-values used
    """

    adc_mm2_per_s: sitk.Image
    s0: sitk.Image
    valid: sitk.Image
    b_values_s_per_mm2: tuple[float, ...]


def adc_map(adc: sitk.Image | QuantitativeImage, unit: str | None = None) -> sitk.Image:
    """An ADC map converted to mm2/s (float64), checked for a plausible scale.

    Parameters
    ----------
    adc : SimpleITK.Image or QuantitativeImage
        Scanner or fitted ADC map. A QuantitativeImage carries its unit ("mm2/s").
    unit : str
        Unit of the stored values, one of :data:`ADC_UNITS` (e.g. "1e-6 mm2/s" for maps
        stored in um2/s); required for a plain image, checked against a QuantitativeImage's.

    Raises
    ------
    ValueError
        Unknown or missing unit, or a median positive value above
        :data:`MAX_PLAUSIBLE_ADC_MM2_PER_S` after conversion (wrong unit).
    """
    if isinstance(adc, QuantitativeImage):
        if unit is not None and _unit_factor(unit) != _unit_factor(adc.units):
            raise ValueError(f"{adc.source or 'ADC map'}: unit={unit!r} disagrees with the image's {adc.units!r}")
        unit, image, where = adc.units, adc.image, adc.source or "ADC map"
    else:
        image, where = adc, "ADC map"
        if unit is None:
            raise ValueError(f"the unit of the ADC map is needed: pass unit= one of {sorted(ADC_UNITS)}")
    factor = _unit_factor(unit)
    if not isinstance(image, sitk.Image) or image.GetDimension() != 3 or \
            image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{where}: expected a 3D scalar SimpleITK image")
    values = sitk.GetArrayViewFromImage(image).astype(np.float64) * factor
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size:
        median = float(np.median(positive))
        if median > MAX_PLAUSIBLE_ADC_MM2_PER_S:
            raise ValueError(f"{where}: median ADC {median:.4g} mm2/s with unit={unit!r} is above "
                             f"{MAX_PLAUSIBLE_ADC_MM2_PER_S:g} mm2/s (free water is 3.0e-3); is the map "
                             "stored in 1e-6 mm2/s (unit='1e-6 mm2/s')?")
    result = sitk.GetImageFromArray(values)
    result.CopyInformation(image)
    return result


def fit_adc(dwi: Sequence[sitk.Image], b_values_s_per_mm2: Sequence[float], *, min_signal: float | None = None,
            relative_min_signal: float = DEFAULT_RELATIVE_MIN_SIGNAL,
            progress: ProgressCallback | None = None) -> AdcFit:
    """Fit S(b) = S0 exp(-b ADC) in every voxel by weighted log-linear least squares (closed form).

    With y_i = ln S_i, weights w_i = S_i^2 and sums over b-values,
    slope = (sum w * sum w b y - sum w b * sum w y) / (sum w * sum w b^2 - (sum w b)^2),
    ADC = -slope, ln S0 = (sum w y - slope sum w b) / sum w; evaluated for all voxels
    at once (numpy reductions over the b axis, in chunks of voxels).

    Parameters
    ----------
    dwi : sequence of SimpleITK.Image
        One 3D image per b-value (trace-weighted or a single direction), same grid.
    b_values_s_per_mm2 : sequence of float
        At least 2, non-negative, strictly increasing, in s/mm2.
    min_signal : float, optional
        Voxels whose lowest-b signal is below this (the DWI's unit) are masked. Default:
        ``relative_min_signal`` times the 99th percentile of the lowest-b image.
    relative_min_signal : float
        See ``min_signal``.
    progress : callable(fraction, message), optional

    Returns
    -------
    AdcFit
        ADC in mm2/s and S0, NaN where masked (low signal, or a signal <= 0 at any b).
    """
    progress = progress or no_progress
    b = np.asarray(list(b_values_s_per_mm2), dtype=float)
    if b.ndim != 1 or b.size < 2:
        raise ValueError(f"at least 2 b-values are needed for an ADC fit, got {b.tolist()} s/mm2")
    if not np.isfinite(b).all() or (b < 0).any():
        raise ValueError(f"b-values must be finite and >= 0 s/mm2, got {b.tolist()}")
    if (np.diff(b) <= 0).any():
        raise ValueError(f"b-values must be strictly increasing, got {b.tolist()} s/mm2")
    images = list(dwi)
    if len(images) != b.size:
        raise ValueError(f"{len(images)} DWI images for {b.size} b-values {b.tolist()}")
    reference = images[0]
    for k, image in enumerate(images):
        if not isinstance(image, sitk.Image) or image.GetDimension() != 3 or \
                image.GetNumberOfComponentsPerPixel() != 1:
            raise ValueError(f"DWI image {k} (b = {b[k]:g} s/mm2) is not a 3D scalar SimpleITK image")
        if image.GetSize() != reference.GetSize() or not (
                np.allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-3)
                and np.allclose(image.GetSpacing(), reference.GetSpacing(), atol=1e-4)
                and np.allclose(image.GetDirection(), reference.GetDirection(), atol=1e-4)):
            raise ValueError(f"DWI image {k} (b = {b[k]:g} s/mm2) is not on the grid of the b = {b[0]:g} image")
    signal = np.stack([sitk.GetArrayViewFromImage(image).reshape(-1) for image in images])
    if min_signal is None:
        finite = signal[0][np.isfinite(signal[0])]
        min_signal = relative_min_signal * float(np.percentile(finite, 99)) if finite.size else 0.0
    n_voxels = signal.shape[1]
    adc = np.full(n_voxels, np.nan)
    s0 = np.full(n_voxels, np.nan)
    for start in range(0, n_voxels, _CHUNK_VOXELS):
        part = slice(start, min(start + _CHUNK_VOXELS, n_voxels))
        adc[part], s0[part] = _wls_fit(signal[:, part].astype(np.float64), b, float(min_signal))
        progress(part.stop / n_voxels, "ADC fit")
    shape = reference.GetSize()[::-1]
    valid = np.isfinite(adc)
    logger.info("ADC fit: b = %s s/mm2, %d of %d voxels fitted", b.tolist(), int(valid.sum()), n_voxels)
    return AdcFit(adc_mm2_per_s=image_on_grid(adc.reshape(shape), reference),
                  s0=image_on_grid(s0.reshape(shape), reference),
                  valid=image_on_grid(valid.reshape(shape).astype(np.uint8), reference),
                  b_values_s_per_mm2=tuple(float(v) for v in b))


def _wls_fit(signal: np.ndarray, b: np.ndarray, min_signal: float) -> tuple[np.ndarray, np.ndarray]:
    """(ADC, S0) of voxels (columns of ``signal``, rows = b-values); NaN where masked."""
    usable = (signal > 0).all(axis=0) & np.isfinite(signal).all(axis=0) & (signal[0] >= min_signal)
    s = np.where(usable, signal, 1.0)
    y = np.log(s)
    w = s * s
    bw = b[:, None] * w
    sum_w, sum_bw, sum_bbw = w.sum(axis=0), bw.sum(axis=0), (b[:, None] * bw).sum(axis=0)
    sum_wy, sum_bwy = (w * y).sum(axis=0), (bw * y).sum(axis=0)
    determinant = sum_w * sum_bbw - sum_bw * sum_bw
    slope = (sum_w * sum_bwy - sum_bw * sum_wy) / determinant
    intercept = (sum_wy - slope * sum_bw) / sum_w
    return np.where(usable, -slope, np.nan), np.where(usable, np.exp(intercept), np.nan)


def _unit_key(unit: str) -> str:
    """Spelling-insensitive unit key: no spaces, lower case, "2" for "²", "u" for micro/mu."""
    text = str(unit).strip().replace("²", "2").replace("µ", "u").replace("μ", "u")
    return text.replace(" ", "").lower()


def _unit_factor(unit: str) -> float:
    key = _unit_key(unit)
    factors = {_unit_key(name): factor for name, factor in ADC_UNITS.items()}
    if key not in factors:
        raise ValueError(f"unknown ADC unit {unit!r}; accepted: {sorted(ADC_UNITS)}")
    return factors[key]
