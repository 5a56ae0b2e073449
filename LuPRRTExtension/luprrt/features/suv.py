"""Body-weight standardised uptake value (SUVbw) of PET images; SUVmax, SUVmean and SUVpeak.

SUVbw (Kinahan & Fletcher, Semin Ultrasound CT MR 2010;31:496-505; QIBA FDG-PET/CT
Profile and its vendor-neutral SUV pseudo-code; UPICT FDG-PET/CT oncology protocol,
Graham et al., J Nucl Med 2015;56:955-961):

    SUVbw = C [Bq/mL] / (A [Bq] / W [g])   (unit g/mL),

C the voxel activity concentration, W the body weight, A the injected activity decayed
to the time the voxel values refer to. Which time that is depends on DecayCorrection
(0054,1102) (DICOM PS3.3 C.8.9.1, PET Series module):

* ``START``: voxels decay-corrected to the series start, SeriesDate/Time (0008,0021/0031):
  A = A_inj exp(-ln2 (t_series - t_inj) / T1/2). If the series time lies after the
  earliest acquisition time (post-processing rewrote it), the QIBA pseudo-code's
  fallback is used: the earliest acquisition time.
* ``ADMIN``: voxels decay-corrected to the administration: A = A_inj.
* ``NONE``: voxels not decay-corrected: A is decayed to the acquisition time of each
  frame (bed position); frame times are given per slice.

SUVpeak follows PERCIST (Wahl et al., J Nucl Med 2009;50 Suppl 1:122S-150S): the highest
mean SUV in a 1 mL sphere (radius (3/(4 pi))^(1/3) cm = 6.2 mm) whose centre lies in
the lesion. The sphere mean at every voxel is one FFT convolution of the SUV image with
a normalised spherical kernel on the image grid (:func:`sphere_kernel`: each kernel
voxel weighted by the share of it inside the sphere); the peak of every lesion is then
the per-label maximum of that map (one pass, :func:`luprrt.regionstats.region_statistics`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import SimpleITK as sitk
from pydicom.datadict import tag_for_keyword
from scipy import fft

from ..io import QuantitativeImage
from ..physics import PET_HALF_LIVES_H, decay_factor, hours_between
from ..regionstats import region_statistics

logger = logging.getLogger(__name__)

DECAY_CORRECTIONS = ("START", "ADMIN", "NONE")
# PERCIST SUVpeak sphere: 1 mL; radius (3 V / 4 pi)^(1/3) = 6.2035 mm.
PEAK_SPHERE_VOLUME_ML = 1.0
# Sub-sample pitch of the kernel's partial-voxel weights, mm (see sphere_kernel).
KERNEL_SUBSAMPLE_MM = 0.05
# Relative mismatch between RadionuclideHalfLife and the named nuclide's half-life that is reported.
_HALF_LIFE_TOLERANCE_REL = 0.01
_NUCLIDE_MEANING = re.compile(r"\^?(\d+)\^?\s*([A-Za-z]+)")
_ELEMENT_SYMBOLS = {"fluorine": "F", "gallium": "Ga"}


@dataclass(frozen=True)
class SuvConversion:
    """How Bq/mL became SUVbw: every input and the resulting factor.

    Attributes
    ----------
    weight_kg : body weight, kg
    injected_activity_mbq : administered activity at injection, MBq
    injection_datetime : RadiopharmaceuticalStartDateTime (naive wall-clock time)
    half_life_h : physical half-life used for decay correction, h
    decay_correction : DecayCorrection: "START", "ADMIN" or "NONE"
    reference_datetimes : time the voxel values refer to, one per slice (z order)
    activity_at_reference_mbq : injected activity decayed to each reference time, MBq (per slice)
    suv_per_bq_per_ml : SUV per Bq/mL, i.e. W [g] / A [Bq], in g/Bq (per slice)
    """

    weight_kg: float
    injected_activity_mbq: float
    injection_datetime: datetime
    half_life_h: float
    decay_correction: str
    reference_datetimes: tuple[datetime, ...]
    activity_at_reference_mbq: np.ndarray = field(repr=False)
    suv_per_bq_per_ml: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class SuvStatistics:
    """SUVmax, SUVmean and SUVpeak (g/mL) and volume (mL) of each label, one array entry per label."""

    label: np.ndarray
    voxel_count: np.ndarray
    volume_ml: np.ndarray
    suvmax: np.ndarray
    suvmean: np.ndarray
    suvpeak: np.ndarray

    def rows(self) -> list[dict]:
        """One dict per label."""
        return [{"label": int(self.label[i]), "voxel_count": int(self.voxel_count[i]),
                 "volume_ml": float(self.volume_ml[i]), "suvmax": float(self.suvmax[i]),
                 "suvmean": float(self.suvmean[i]), "suvpeak": float(self.suvpeak[i])}
                for i in range(len(self.label))]


def suv_conversion(qimage: QuantitativeImage, weight_kg: float | None = None, *,
                   injected_activity_mbq: float | None = None, injection_datetime: datetime | None = None,
                   decay_correction: str | None = None, series_datetime: datetime | None = None,
                   frame_datetimes: Sequence[datetime] | None = None, half_life_h: float | None = None,
                   radionuclide: str | None = None) -> SuvConversion:
    """The Bq/mL -> SUVbw factor of a PET image from its header values (or given overrides).

    Parameters
    ----------
    qimage : QuantitativeImage
        PET in Bq/mL, as read by :func:`luprrt.io.dicom.read_pet_series` (its ``pet``
        record holds weight, half-life, DecayCorrection and series date-time).
    weight_kg : float, optional
        Body weight, kg; overrides PatientWeight (0010,1030).
    injected_activity_mbq, injection_datetime : optional
        Override the image's injected activity (MBq) and injection date-time.
    decay_correction : {"START", "ADMIN", "NONE"}, optional
        Overrides DecayCorrection (0054,1102).
    series_datetime : datetime, optional
        Overrides SeriesDate/SeriesTime, the reference time of ``START``.
    frame_datetimes : sequence of datetime, optional
        For ``NONE``: acquisition start of the frame holding each slice, in slice (z)
        order, or one value for the whole image. Default: the image's acquisition
        date-time (a single-frame static acquisition).
    half_life_h : float, optional
        Overrides RadionuclideHalfLife (0018,1075), h.
    radionuclide : {"F-18", "Ga-68"}, optional
        Takes the half-life from :data:`luprrt.physics.PET_HALF_LIVES_H` when the header
        has none; checked against the header half-life otherwise.

    Raises
    ------
    ValueError
        A missing value, naming the DICOM tag and the keyword that supplies it; a
        non-positive weight, activity or half-life; a reference time before injection.
    """
    if not isinstance(qimage, QuantitativeImage):
        raise ValueError(f"suv needs a QuantitativeImage (PET in Bq/mL), got {type(qimage).__name__}")
    where = qimage.source or "PET image"
    if qimage.units != "Bq/mL":
        raise ValueError(f"{where}: SUV is computed from Bq/mL, but the image is in {qimage.units!r}")
    pet = qimage.pet
    weight = _given_or_header(weight_kg, pet.patient_weight_kg if pet else None, "PatientWeight",
                              "weight_kg", where, "body weight in kg")
    activity = _given_or_header(injected_activity_mbq, qimage.injected_activity_mbq, "RadionuclideTotalDose",
                                "injected_activity_mbq", where, "injected activity in MBq")
    injection = _given_or_header(injection_datetime, qimage.injection_datetime,
                                 "RadiopharmaceuticalStartDateTime", "injection_datetime", where,
                                 "injection date-time")
    for name, value in (("weight_kg", weight), ("injected_activity_mbq", activity)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{where}: {name} must be positive, got {value}")
    correction = _given_or_header(decay_correction, pet.decay_correction if pet else None, "DecayCorrection",
                                  "decay_correction", where, '"START", "ADMIN" or "NONE"')
    correction = str(correction).strip().upper()
    if correction not in DECAY_CORRECTIONS:
        raise ValueError(f"{where}: {_label('DecayCorrection')} = {correction!r} is not one of "
                         f"{DECAY_CORRECTIONS}; pass decay_correction=")
    half_life = _half_life(half_life_h, pet.half_life_h if pet else None,
                           radionuclide or _nuclide_name(pet.radionuclide if pet else None), where)
    n_slices = qimage.image.GetSize()[2] if qimage.image.GetDimension() == 3 else 1
    references = _reference_datetimes(qimage, correction, injection, series_datetime, frame_datetimes,
                                      n_slices, where)
    elapsed_h = np.array([hours_between(injection, t) for t in references])
    if (elapsed_h < 0).any():
        first = references[int(np.argmin(elapsed_h))]
        raise ValueError(f"{where}: the {correction} reference time {first.isoformat()} is before the injection "
                         f"{injection.isoformat()} ({_label('RadiopharmaceuticalStartDateTime')})")
    decayed_mbq = activity * decay_factor(elapsed_h, half_life)
    return SuvConversion(weight_kg=float(weight), injected_activity_mbq=float(activity),
                         injection_datetime=injection, half_life_h=float(half_life), decay_correction=correction,
                         reference_datetimes=tuple(references), activity_at_reference_mbq=decayed_mbq,
                         suv_per_bq_per_ml=weight * 1000.0 / (decayed_mbq * 1e6))


def suv_image(qimage: QuantitativeImage, weight_kg: float | None = None, **overrides) -> sitk.Image:
    """SUVbw image (g/mL, float64) of a PET in Bq/mL.

    Parameters
    ----------
    qimage : QuantitativeImage
        PET in Bq/mL with its header values (see :func:`suv_conversion`).
    weight_kg : float, optional
        Body weight, kg (overrides PatientWeight (0010,1030)).
    **overrides
        Any keyword of :func:`suv_conversion` (injected activity, times, half-life, ...).

    Returns
    -------
    SimpleITK.Image
        Same geometry as ``qimage.image``; float64 so that the conversion adds no
        rounding of its own.
    """
    conversion = suv_conversion(qimage, weight_kg, **overrides)
    values = sitk.GetArrayViewFromImage(qimage.image).astype(np.float64)
    factor = conversion.suv_per_bq_per_ml
    values *= factor[:, None, None] if factor.size > 1 else factor[0]
    image = sitk.GetImageFromArray(values)
    image.CopyInformation(qimage.image)
    logger.info("SUVbw of %s: %s, weight %.1f kg, %.1f MBq injected, %.4g g/Bq", qimage.source or "PET",
                conversion.decay_correction, conversion.weight_kg, conversion.injected_activity_mbq,
                float(factor.mean()))
    return image


def sphere_kernel(spacing_xyz_mm: Sequence[float], volume_ml: float = PEAK_SPHERE_VOLUME_ML, *,
                  subsample_mm: float = KERNEL_SUBSAMPLE_MM) -> np.ndarray:
    """Share of each voxel (z, y, x) of a grid that lies inside a sphere centred on the middle voxel.

    The weights come from supersampling in-plane (x, y) at a pitch of at most
    ``subsample_mm``, with the exact chord of the sphere along z: for each (x, y)
    sub-sample the segment |z| <= sqrt(r^2 - x^2 - y^2) is clipped to every voxel's z
    range. The summed volume is thus a midpoint rule of the disc integral of
    2 sqrt(r^2 - rho^2); its error is bounded by the rim cells (see the tests).

    Parameters
    ----------
    spacing_xyz_mm : sequence of 3 float
        Voxel size (x, y, z), mm (any orthonormal direction: a sphere does not care).
    volume_ml : float
        Sphere volume, mL (1 mL for SUVpeak).
    subsample_mm : float
        Largest in-plane sub-sample pitch, mm.

    Returns
    -------
    numpy.ndarray
        Occupancy in [0, 1], odd shape (z, y, x) with the sphere centre at the middle
        voxel. ``occupancy.sum() * voxel volume`` approximates ``volume_ml``; normalise
        by ``occupancy.sum()`` for a mean.
    """
    spacing = np.asarray(spacing_xyz_mm, dtype=float)[::-1]  # (z, y, x)
    if spacing.shape != (3,) or not np.all(spacing > 0):
        raise ValueError(f"spacing must be three positive lengths (mm), got {spacing_xyz_mm}")
    if not volume_ml > 0:
        raise ValueError(f"sphere volume must be positive, got {volume_ml} mL")
    if not subsample_mm > 0:
        raise ValueError(f"subsample_mm must be positive, got {subsample_mm}")
    radius = (3.0 * volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    # Voxel k spans [(k - 1/2) s, (k + 1/2) s]: it meets the sphere when (|k| - 1/2) s < r.
    half = np.ceil(radius / spacing + 0.5).astype(int) - 1
    n_sub = np.ceil(spacing[1:] / subsample_mm).astype(int)
    # In-plane sub-sample centres (mm) of voxels -half..half, per axis (y, x).
    centres = [((np.arange(-h, h + 1)[:, None] - 0.5 + (np.arange(m) + 0.5)[None, :] / m) * s).ravel()
               for h, m, s in zip(half[1:], n_sub, spacing[1:], strict=True)]
    rho2 = centres[0][:, None] ** 2 + centres[1][None, :] ** 2
    chord_half = np.sqrt(np.maximum(radius * radius - rho2, 0.0))  # (Y, X) sub-samples
    z_low = (np.arange(-half[0], half[0] + 1) - 0.5) * spacing[0]
    inside = np.clip(np.minimum(chord_half[None], z_low[:, None, None] + spacing[0])
                     - np.maximum(-chord_half[None], z_low[:, None, None]), 0.0, None)
    ny, nx = 2 * half[1] + 1, 2 * half[2] + 1
    per_voxel = inside.reshape(2 * half[0] + 1, ny, n_sub[0], nx, n_sub[1]).sum(axis=(2, 4))
    return per_voxel / (spacing[0] * n_sub[0] * n_sub[1])


def sphere_mean_image(image: sitk.Image, volume_ml: float = PEAK_SPHERE_VOLUME_ML, *,
                      subsample_mm: float = KERNEL_SUBSAMPLE_MM) -> sitk.Image:
    """Mean of ``image`` in a sphere of ``volume_ml`` centred on every voxel (float64, same grid).

    One FFT convolution (scipy.fft) with the normalised :func:`sphere_kernel`. Beyond
    the image border the edge values are repeated (the sphere of a voxel at the
    border of the field of view sees the border, not zeros).
    """
    _check_scalar_3d(image, "image")
    values = sitk.GetArrayViewFromImage(image).astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError("image has NaN or infinite voxels; the sphere mean needs finite values everywhere")
    kernel = sphere_kernel(image.GetSpacing(), volume_ml, subsample_mm=subsample_mm)
    kernel /= kernel.sum()
    half = [(n - 1) // 2 for n in kernel.shape]
    padded = np.pad(values, [(h, h) for h in half], mode="edge")
    # A circular convolution of length >= the padded size leaves the 'valid' part untouched
    # by wrap-around, so no extra zero padding is needed.
    shape = [fft.next_fast_len(n, real=True) for n in padded.shape]
    spectrum = fft.rfftn(padded, shape, workers=-1) * fft.rfftn(kernel, shape, workers=-1)
    full = fft.irfftn(spectrum, shape, workers=-1)
    valid = full[tuple(slice(2 * h, 2 * h + n) for h, n in zip(half, values.shape, strict=True))]
    result = sitk.GetImageFromArray(np.ascontiguousarray(valid))
    result.CopyInformation(image)
    return result


def suv_statistics(suv: sitk.Image, labels: sitk.Image, *, label_values: Sequence[int] | None = None,
                   peak_volume_ml: float = PEAK_SPHERE_VOLUME_ML) -> SuvStatistics:
    """SUVmax, SUVmean and SUVpeak of every label of a label map on the SUV grid.

    One sphere-mean convolution for all labels, then two one-pass region reductions
    (:func:`luprrt.regionstats.region_statistics`): SUVmax and SUVmean of the SUV
    image, and SUVpeak = the maximum of the sphere-mean map over the label's voxels
    (sphere centres inside the lesion).

    Parameters
    ----------
    suv : SimpleITK.Image
        SUVbw image (g/mL), e.g. from :func:`suv_image`.
    labels : SimpleITK.Image
        Integer label map on the same grid (0 = background).
    label_values : sequence of int, optional
        Labels to report, in this order; default every label present.
    peak_volume_ml : float
        SUVpeak sphere volume, mL.
    """
    peak = sphere_mean_image(suv, peak_volume_ml)
    stats = region_statistics(suv, labels, label_values=label_values, unit="SUVbw")
    peaks = region_statistics(peak, labels, label_values=stats.label, unit="SUVbw")
    return SuvStatistics(label=stats.label, voxel_count=stats.voxel_count, volume_ml=stats.volume_ml,
                         suvmax=stats.max, suvmean=stats.mean, suvpeak=peaks.max)


# --- helpers -------------------------------------------------------------------------------------

def _label(keyword: str) -> str:
    """``Keyword (gggg,eeee)`` for messages."""
    tag = tag_for_keyword(keyword)
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _given_or_header(given, header, keyword: str, argument: str, where: str, what: str):
    if given is not None:
        return given
    if header is None:
        raise ValueError(f"{where}: {_label(keyword)} is missing, so the {what} needed for SUV is unknown; "
                         f"pass {argument}=")
    return header


def _nuclide_name(code_meaning: str | None) -> str | None:
    """"F-18" from a code meaning such as "^18^Fluorine" (None if not recognised)."""
    match = _NUCLIDE_MEANING.search(code_meaning or "")
    symbol = _ELEMENT_SYMBOLS.get(match.group(2).lower()) if match else None
    return f"{symbol}-{match.group(1)}" if symbol else None


def _half_life(given: float | None, header: float | None, nuclide: str | None, where: str) -> float:
    if nuclide is not None and nuclide not in PET_HALF_LIVES_H:
        raise ValueError(f"{where}: unknown radionuclide {nuclide!r}; known: {sorted(PET_HALF_LIVES_H)}, or "
                         "pass half_life_h=")
    known = PET_HALF_LIVES_H.get(nuclide) if nuclide else None
    half_life = given if given is not None else header if header is not None else known
    if half_life is None:
        raise ValueError(f"{where}: {_label('RadionuclideHalfLife')} is missing and the radionuclide is "
                         "unknown; pass half_life_h= or radionuclide=")
    if not (math.isfinite(half_life) and half_life > 0):
        raise ValueError(f"{where}: half-life must be positive, got {half_life} h")
    if known is not None and abs(half_life / known - 1.0) > _HALF_LIFE_TOLERANCE_REL:
        logger.warning("%s: half-life %.4g h differs from %s's %.4g h", where, half_life, nuclide, known)
    return float(half_life)


def _reference_datetimes(qimage: QuantitativeImage, correction: str, injection: datetime,
                         series_datetime: datetime | None, frame_datetimes: Sequence[datetime] | None,
                         n_slices: int, where: str) -> list[datetime]:
    """The time each slice's values refer to under ``correction``."""
    if correction == "ADMIN":
        return [injection]
    if correction == "START":
        if series_datetime is not None:
            return [series_datetime]
        series = qimage.pet.series_datetime if qimage.pet else None
        acquisition = qimage.acquisition_datetime
        if series is None and acquisition is None:
            raise ValueError(f"{where}: {_label('SeriesDate')} / {_label('SeriesTime')} are missing, so the "
                             "START decay-correction time is unknown; pass series_datetime=")
        if series is None:
            logger.warning("%s: SeriesDate/Time missing; the earliest acquisition time %s is used as the START "
                           "reference", where, acquisition.isoformat())
            return [acquisition]
        if acquisition is not None and series > acquisition:
            # Post-processing can rewrite SeriesTime; the QIBA SUV pseudo-code then falls back
            # to the earliest acquisition time.
            logger.warning("%s: SeriesDate/Time %s is after the earliest acquisition %s; the acquisition "
                           "time is used as the START reference (QIBA SUV pseudo-code)", where,
                           series.isoformat(), acquisition.isoformat())
            return [acquisition]
        return [series]
    if frame_datetimes is None:
        if qimage.acquisition_datetime is None:
            raise ValueError(f"{where}: {_label('AcquisitionDateTime')} is missing, so the acquisition time of "
                             "the non-decay-corrected (NONE) frames is unknown; pass frame_datetimes=")
        return [qimage.acquisition_datetime]
    frames = list(frame_datetimes) if not isinstance(frame_datetimes, datetime) else [frame_datetimes]
    if len(frames) not in (1, n_slices):
        raise ValueError(f"{where}: frame_datetimes has {len(frames)} values; give one per slice "
                         f"({n_slices}) or one for the whole image")
    return frames


def _check_scalar_3d(image, name: str) -> None:
    if not isinstance(image, sitk.Image) or image.GetDimension() != 3 or \
            image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{name} must be a 3D scalar SimpleITK image")
