"""Absorbed dose from time-integrated activity: local deposition, voxel S-values, S-values.

Units: time-integrated activity (TIA) images in Bq h/mL, lesion/organ TIA in MBq h, CT in
HU, density in g/mL, dose in Gy. Density is explicit: a CT-derived density image where a CT is
at hand, else a single density, soft tissue (1.03 g/mL) by default. The voxel S-value kernel is
for tissue of one density (1.03 g/mL); dose in other tissue is scaled by the kernel density over
the local density (dose to medium, the usual voxel-S-value density correction; e.g. Dieudonne et
al. J Nucl Med 2010;51:1600).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import fft

from ..grid import image_on_grid, require_same_grid
from ..physics import (
    BQ_PER_MBQ,
    LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G,
    ML_PER_MM3,
    SOFT_TISSUE_DENSITY_G_PER_ML,
)
from ..provenance import ProgressCallback, no_progress
from .svalues import organ_self_s_value, s_value_dose_gy, sphere_self_s_value
from .vsv_kernel import DEFAULT_KERNEL_RADIUS_MM, VoxelSValueKernel, build_voxel_s_value_kernel


@dataclass(frozen=True)
class HuDensityCalibration:
    """Piecewise-linear CT number -> mass density calibration (clamped outside the nodes).

    Default nodes: air (-1000 HU, 0.0012 g/mL, dry air at 20 C), water (0 HU, 1.000 g/mL by
    the definition of the Hounsfield scale) and cortical bone (+1500 HU, 1.92 g/mL; ICRU
    Report 44 cortical bone density at the CT number typical of 120 kVp scans). This is the
    two-segment shape of stoichiometric calibrations (Schneider, Pedroni & Lomax, Phys Med
    Biol 1996;41:111-124: a lung/soft-tissue line through air and water and a flatter
    bone line, bone attenuating more per gram). CT numbers are scanner- and kVp-specific: supply the site's own
    calibration nodes when available.
    """

    hu: tuple[float, ...] = (-1000.0, 0.0, 1500.0)
    density_g_per_ml: tuple[float, ...] = (0.0012, 1.0, 1.92)

    def __post_init__(self):
        hu, rho = np.asarray(self.hu, float), np.asarray(self.density_g_per_ml, float)
        if hu.ndim != 1 or hu.shape != rho.shape or hu.size < 2:
            raise ValueError(f"calibration needs >= 2 matching (HU, density) nodes, got {self.hu} and "
                             f"{self.density_g_per_ml}")
        if np.any(np.diff(hu) <= 0):
            raise ValueError(f"calibration HU nodes must increase strictly, got {self.hu}")
        if np.any(rho <= 0):
            raise ValueError(f"calibration densities must be positive, got {self.density_g_per_ml} g/mL")

    def density(self, hu) -> np.ndarray:
        """Mass density (g/mL) for CT numbers ``hu`` (array-like)."""
        return np.interp(np.asarray(hu, dtype=float), self.hu, self.density_g_per_ml)


def density_image_from_ct(ct_hu: sitk.Image, calibration: HuDensityCalibration | None = None) -> sitk.Image:
    """Mass-density image (g/mL, float32) from a CT in HU, on the CT grid.

    Parameters
    ----------
    ct_hu : SimpleITK.Image
        CT in Hounsfield units.
    calibration : HuDensityCalibration, optional
        HU -> density nodes; the default air/water/cortical-bone calibration when None.

    Returns
    -------
    SimpleITK.Image
        Mass density (g/mL, float32) on the CT grid.
    """
    calibration = calibration or HuDensityCalibration()
    density = calibration.density(sitk.GetArrayViewFromImage(ct_hu)).astype(np.float32)
    return image_on_grid(density, ct_hu)


def local_deposition_dose(tia_bq_h_per_ml: sitk.Image,
                          density_g_per_ml: sitk.Image | float = SOFT_TISSUE_DENSITY_G_PER_ML) -> sitk.Image:
    """Local-energy-deposition dose (Gy): all electron energy absorbed in the voxel.

    ``D = TIA [MBq h/mL] / rho [g/mL] x 0.0853 Gy/(MBq h/g)`` (147.9 keV per decay;
    :data:`luprrt.physics.LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G`, ICRP-107). Photons
    are not deposited locally.

    Parameters
    ----------
    tia_bq_h_per_ml : SimpleITK.Image
        Voxel time-integrated activity concentration (Bq h/mL).
    density_g_per_ml : SimpleITK.Image or float
        A mass-density image (g/mL) on the TIA grid or one density (soft tissue, 1.03 g/mL, by default).

    Returns
    -------
    SimpleITK.Image
        Absorbed dose (Gy) on the TIA grid.
    """
    gy_per_bq_h_per_ml = LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G / BQ_PER_MBQ
    dose = sitk.GetArrayViewFromImage(tia_bq_h_per_ml) * gy_per_bq_h_per_ml
    dose = dose / _density_array(density_g_per_ml, tia_bq_h_per_ml)
    return image_on_grid(dose.astype(np.float32), tia_bq_h_per_ml)


def voxel_s_value_dose(tia_bq_h_per_ml: sitk.Image, kernel: VoxelSValueKernel | None = None,
                       density_g_per_ml: sitk.Image | float | None = None, workers: int = -1,
                       progress: ProgressCallback | None = None) -> sitk.Image:
    """Absorbed dose (Gy) by FFT convolution of the TIA map with a voxel S-value kernel.

    ``D = (A~ * S + A~_c * S_c) rho_k / rho`` with ``A~`` the voxel TIA in MBq h (TIA [Bq h/mL] x
    voxel volume [mL] / 1e6), ``S`` the fine kernel (electrons, photons within its radius),
    ``A~_c * S_c`` the photon cross-dose from farther away, convolved on a coarse grid of voxel
    blocks over the whole image and interpolated back (:func:`far_photon_dose`), ``rho_k`` the
    kernel's tissue density and ``rho`` the local density. Computed in float32 with
    ``scipy.fft.rfftn`` on zero-padded grids, so there is no wrap-around.

    Parameters
    ----------
    tia_bq_h_per_ml : SimpleITK.Image
        Time-integrated activity concentration (Bq h/mL).
    kernel : VoxelSValueKernel, optional
        Built for the image spacing; by default one is built (soft tissue, 1.03 g/mL).
    density_g_per_ml : SimpleITK.Image or float, optional
        Mass density (g/mL): an image on the same grid (e.g. :func:`density_image_from_ct`) or one
        value; default the kernel's density.
    workers : int
        Threads for scipy.fft (-1 = all cores).
    progress : callable, optional
        ``progress(fraction, message)``.

    Raises
    ------
    ValueError
        Kernel voxel size different from the image spacing; density on another grid.
    """
    progress = progress or no_progress
    spacing = tia_bq_h_per_ml.GetSpacing()
    if kernel is None:
        kernel = build_voxel_s_value_kernel(spacing, DEFAULT_KERNEL_RADIUS_MM)
    elif not kernel.matches(spacing):
        raise ValueError(f"voxel S-value kernel was built for {kernel.voxel_size_mm} mm voxels but the TIA "
                         f"image has spacing {spacing} mm; build the kernel for the image spacing")
    density = _density_array(kernel.density_g_per_ml if density_g_per_ml is None else density_g_per_ml,
                             tia_bq_h_per_ml)  # checked before the long part
    progress(0.1, "voxel S-value dose: convolution")
    voxel_ml = float(np.prod(spacing)) * ML_PER_MM3
    tia_mbq_h = sitk.GetArrayViewFromImage(tia_bq_h_per_ml).astype(np.float32)
    tia_mbq_h *= np.float32(voxel_ml / BQ_PER_MBQ)
    dose = fft_convolve_same(tia_mbq_h, kernel.s_gy_per_mbq_h, workers=workers, kernel_spectrum=kernel.fine_spectrum)
    progress(0.7, "voxel S-value dose: photon cross-dose over the image")
    far_photon_dose(tia_mbq_h, kernel, workers=workers, out=dose)
    progress(0.9, "voxel S-value dose: density scaling")
    dose *= (np.float32(kernel.density_g_per_ml) / density).astype(np.float32)
    progress(1.0, "voxel S-value dose: done")
    return image_on_grid(dose, tia_bq_h_per_ml)


def far_photon_dose(tia_mbq_h: np.ndarray, kernel: VoxelSValueKernel, workers: int = -1,
                    out: np.ndarray | None = None) -> np.ndarray:
    """Photon cross-dose (Gy) beyond the fine kernel, over the whole image, on the fine grid (z, y, x).

    A particle-mesh scheme: the voxel TIAs (MBq h) are assigned to coarse nodes one block
    (``kernel.coarse_factor`` voxels) apart with linear (cloud-in-cell) weights, convolved with
    :meth:`VoxelSValueKernel.coarse_photon_spectrum` (reaching across the whole image), and
    interpolated back to the voxel centres with the same weights. Assignment and interpolation
    being linear, a source keeps its position within a block (no half-block shift of the
    cross-dose) and the total activity is conserved. With ``out`` (float32, the image shape) the
    dose is added to it in place and ``out`` is returned.

    Parameters
    ----------
    tia_mbq_h : numpy.ndarray
        Voxel time-integrated activities (MBq h), indexed (z, y, x).
    kernel : VoxelSValueKernel
        The voxel S-value kernel of the image's voxel size and density.
    workers : int
        Threads of ``scipy.fft`` (-1: all cores).
    out : numpy.ndarray, optional
        Dose array (Gy, float32, the image shape) to add to in place.

    Returns
    -------
    numpy.ndarray
        Photon cross-dose beyond the fine kernel (Gy, float32), or ``out`` with it added.
    """
    factor = kernel.coarse_factor[::-1]  # (z, y, x)
    nodes = np.asarray(tia_mbq_h, dtype=np.float32)
    for axis, f in enumerate(factor):  # the full-size step along the slowest axis: contiguous slabs
        nodes = _assign(nodes, axis, f)
    spectrum, fft_shape = kernel.coarse_photon_spectrum(nodes.shape)
    coarse_dose = fft.irfftn(fft.rfftn(nodes, s=fft_shape, workers=workers) * spectrum, s=fft_shape,
                             workers=workers, overwrite_x=True)
    coarse_dose = coarse_dose[tuple(slice(0, n) for n in nodes.shape)].astype(np.float32)
    for axis in (2, 1):
        coarse_dose = _interpolate(coarse_dose, axis, tia_mbq_h.shape[axis], factor[axis])
    if out is None:
        out = np.zeros(tia_mbq_h.shape, dtype=np.float32)
    _interpolate(coarse_dose, 0, tia_mbq_h.shape[0], factor[0], add_to=out)  # the full-size step
    return out


def _node_layout(factor: int) -> tuple[int, np.ndarray]:
    """Leading padding and upper-node weights of the voxels of a block (linear weights).

    Node ``g`` sits at voxel coordinate ``(g - 1/2) f - 1/2``: voxel ``i`` lies between nodes
    ``g = (i + pad) // f`` and ``g + 1``, at fraction ``w_k`` (``k = (i + pad) % f``) of the way.
    There is one node before the image and one after it, so no voxel is clamped at the edges.
    """
    pad = (factor + 1) // 2  # floor(f/2 + 1/2)
    return pad, ((np.arange(factor) - pad + 0.5) / factor + 0.5).astype(np.float32)


def _voxels_of_phase(n: int, factor: int, pad: int, k: int) -> tuple[slice, slice]:
    """Voxels ``i`` with ``(i + pad) % f == k`` (a strided slice) and their lower nodes (a range)."""
    start = (k - pad) % factor
    count = len(range(start, n, factor))
    first_node = (start + pad) // factor
    return slice(start, n, factor), slice(first_node, first_node + count)


def _assign(values: np.ndarray, axis: int, factor: int) -> np.ndarray:
    """Scatter ``values`` along ``axis`` to coarse nodes with linear weights (sums conserved)."""
    pad, upper = _node_layout(factor)
    moved = np.moveaxis(values, axis, 0)
    n = moved.shape[0]
    out = np.zeros(((n - 1 + pad) // factor + 2, *moved.shape[1:]), dtype=np.float32)
    for k, w in enumerate(upper):
        voxels, nodes = _voxels_of_phase(n, factor, pad, k)
        part = moved[voxels] * w
        out[nodes.start + 1:nodes.stop + 1] += part
        out[nodes] += moved[voxels] - part
    return np.moveaxis(out, 0, axis)


def _interpolate(nodes: np.ndarray, axis: int, n: int, factor: int, add_to: np.ndarray | None = None) -> np.ndarray:
    """Values at coarse nodes -> the ``n`` voxel centres along ``axis`` (linear, as in :func:`_assign`).

    With ``add_to`` the values are added to it (its ``axis`` of length ``n``) and it is returned.
    """
    pad, upper = _node_layout(factor)
    moved = np.moveaxis(nodes, axis, 0)
    step = moved[1:] - moved[:-1]
    if add_to is None:
        out = np.empty((n, *moved.shape[1:]), dtype=np.float32)
        target = out
    else:
        out = add_to
        target = np.moveaxis(add_to, axis, 0)
    for k, w in enumerate(upper):  # lower + w (upper - lower)
        voxels, lower = _voxels_of_phase(n, factor, pad, k)
        values = step[lower] * w
        values += moved[lower]
        if add_to is None:
            target[voxels] = values
        else:
            target[voxels] += values
    return np.moveaxis(out, 0, axis) if add_to is None else out


def fft_convolve_same(values: np.ndarray, kernel: np.ndarray, workers: int = -1,
                      kernel_spectrum=None) -> np.ndarray:
    """Linear (zero-padded) convolution of ``values`` with an odd-sized centred ``kernel``.

    Output has the shape of ``values`` (float32): ``out[i] = sum_j values[j] kernel[i - j + c]``
    with ``c`` the kernel centre. Real FFTs in single precision (complex64 spectra) on a
    grid of ``values + kernel - 1`` per axis rounded up by ``scipy.fft.next_fast_len``; the
    forward transforms are pruned (zero padding lines skipped, :func:`_pruned_rfftn`).
    ``kernel_spectrum(fft_shape)``, if given, returns the kernel's transform (e.g. a cached one,
    :meth:`VoxelSValueKernel.fine_spectrum`).

    Parameters
    ----------
    values : numpy.ndarray
        Image to convolve (e.g. voxel TIA, MBq h).
    kernel : numpy.ndarray
        Kernel with an odd size along every axis of ``values`` (e.g. S-values, Gy per MBq h).
    workers : int
        Threads of ``scipy.fft`` (-1: all cores).
    kernel_spectrum : callable, optional
        ``kernel_spectrum(fft_shape)`` -> the kernel's real-FFT spectrum on that grid.

    Returns
    -------
    numpy.ndarray
        The convolution (float32, shape of ``values``; units of ``values`` x ``kernel``).

    Raises
    ------
    ValueError
        Kernel not odd along every image axis.
    """
    values = np.asarray(values, dtype=np.float32)
    kernel = np.asarray(kernel, dtype=np.float32)
    if values.ndim != kernel.ndim or any(n % 2 == 0 for n in kernel.shape):
        raise ValueError(f"kernel shape {kernel.shape} must be odd along each of the {values.ndim} "
                         f"image axes")
    full = [n + k - 1 for n, k in zip(values.shape, kernel.shape, strict=True)]
    padded = [fft.next_fast_len(n, real=True) for n in full]
    spectrum = _pruned_rfftn(values, padded, workers)
    spectrum *= (_pruned_rfftn(kernel, padded, workers) if kernel_spectrum is None
                 else kernel_spectrum(tuple(padded)))
    result = fft.irfftn(spectrum, s=padded, workers=workers, overwrite_x=True)
    start = [k // 2 for k in kernel.shape]
    window = tuple(slice(s, s + n) for s, n in zip(start, values.shape, strict=True))
    return np.ascontiguousarray(result[window], dtype=np.float32)


def _pruned_rfftn(array: np.ndarray, shape: list[int], workers: int) -> np.ndarray:
    """``rfftn(array, s=shape)`` one axis at a time, skipping the all-zero padding lines.

    Transforming the last axis first, then the others, only touches lines that hold data:
    for a 15^3 kernel padded to 270^3 this is ~3x cheaper than the full transform.
    """
    spectrum = fft.rfft(array, n=shape[-1], axis=-1, workers=workers)
    for axis in range(array.ndim - 2, -1, -1):
        spectrum = fft.fft(spectrum, n=shape[axis], axis=axis, workers=workers, overwrite_x=True)
    return spectrum


def sphere_s_value_dose_gy(tia_mbq_h, volume_ml, density_g_per_ml=SOFT_TISSUE_DENSITY_G_PER_ML,
                           extrapolate: bool = False):
    """Mean lesion dose (Gy) from the soft-tissue sphere self S-value of the lesion's mass and density.

    ``D = TIA [MBq h] x S(m = rho V, rho) [mGy/(MBq s)] x 3.6`` (:func:`.svalues.sphere_self_s_value`,
    the 1.03 g/mL table density-scaled); self-dose only (no cross-dose). Arrays broadcast (one value
    per lesion).

    Parameters
    ----------
    tia_mbq_h : float or array_like
        Time-integrated activity of the lesion (MBq h).
    volume_ml : float or array_like
        Lesion volume (mL), positive.
    density_g_per_ml : float or array_like
        Lesion mass density (g/mL); soft tissue, 1.03 g/mL, by default.
    extrapolate : bool
        Allow masses above the largest tabulated sphere (S x m held at its 60 mm value).

    Returns
    -------
    numpy.ndarray
        Mean absorbed dose (Gy).

    Raises
    ------
    ValueError
        Volume not positive, or lesion mass outside the sphere table (naming the value).
    """
    volume = np.asarray(volume_ml, dtype=float)
    if np.any(~np.isfinite(volume) | (volume <= 0)):
        raise ValueError(f"lesion volume must be positive, got {volume_ml} mL")
    density = np.asarray(density_g_per_ml, dtype=float)
    return s_value_dose_gy(tia_mbq_h, sphere_self_s_value(volume * density, density, extrapolate=extrapolate))


def organ_s_value_dose_gy(tia_mbq_h, organ: str, phantom: str = "AM", patient_mass_g: float | None = None):
    """Mean organ self-dose (Gy) from the OpenDose S-value, mass-scaled to the patient organ.

    Parameters
    ----------
    tia_mbq_h : float or array_like
        Time-integrated activity of the organ (MBq h).
    organ : str
        Organ name (:data:`.svalues.ORGAN_SELF_S_VALUES`).
    phantom : str
        ICRP-110 phantom, ``"AM"`` or ``"AF"``.
    patient_mass_g : float, optional
        Mass of the patient's organ (g); None uses the phantom organ's S-value unscaled.

    Returns
    -------
    numpy.ndarray
        Mean self-dose (Gy).
    """
    return s_value_dose_gy(tia_mbq_h, organ_self_s_value(organ, phantom, patient_mass_g))


def _density_array(density_g_per_ml: sitk.Image | float, reference: sitk.Image) -> np.ndarray:
    """Density (g/mL) as an array on the reference grid, or a 0-d array for one density."""
    if not isinstance(density_g_per_ml, sitk.Image):
        value = float(density_g_per_ml)
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"tissue density must be positive, got {density_g_per_ml} g/mL")
        return np.asarray(value)
    require_same_grid(density_g_per_ml, reference, "density image", "the TIA grid", "resample it first")
    density = sitk.GetArrayViewFromImage(density_g_per_ml).astype(np.float64)
    if np.any(~np.isfinite(density) | (density <= 0)):
        raise ValueError(f"density image has non-positive or non-finite values "
                         f"(min {np.nanmin(density)} g/mL)")
    return density
