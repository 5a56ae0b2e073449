"""Checks of an activity image's values before any number is computed from it.

A SPECT or PET that holds NaN, nothing but zeros, or a large share of negative values
gives meaningless T/N, uptake and dose (NaN everywhere, a division by zero, or numbers
lowered by an offset). Such an image is refused with a message naming the file; a few
small negative voxels (statistical undershoot of some reconstructions) are flagged.
The images of one analysis must also belong to one patient: a SPECT of another patient copied
into a folder would otherwise be analysed without complaint.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import SimpleITK as sitk

__all__ = ["NEGATIVE_SHARE_LIMIT", "check_activity_image", "check_one_patient"]

log = logging.getLogger(__name__)

# Negative activity above this share of the positive total is not reconstruction noise (OSEM images are
# non-negative; filtered back-projection undershoot cancels within a few %) but a wrong offset or unit.
NEGATIVE_SHARE_LIMIT = 0.05


def check_activity_image(image: sitk.Image, source: str, what: str = "SPECT") -> list[str]:
    """Refuse an activity-concentration image that cannot be quantified; return warnings for small flaws.

    Raises ValueError naming ``source`` when a voxel is NaN or infinite, when no voxel is
    positive (an empty or all-zero image), or when negative voxels hold more than
    :data:`NEGATIVE_SHARE_LIMIT` of the positive total. Negative voxels below that limit
    are reported in the returned warnings (and logged).
    """
    values = sitk.GetArrayViewFromImage(image)
    finite = np.isfinite(values)
    if not finite.all():
        bad = values.size - int(np.count_nonzero(finite))
        raise ValueError(f"{source}: {bad} of {values.size} {what} voxels are not finite numbers (NaN or "
                         "infinite); correct the reconstruction or its export")
    positive_total = float(values[values > 0].sum(dtype=np.float64))
    if positive_total <= 0:
        raise ValueError(f"{source}: the {what} has no positive voxel (every value is "
                         f"{'0' if not values.any() else '<= 0'}); it holds no activity: give the reconstructed "
                         "quantitative image")
    negative = values < 0
    if not negative.any():
        return []
    negative_total = -float(values[negative].sum(dtype=np.float64))
    share = negative_total / positive_total
    text = (f"{int(np.count_nonzero(negative))} {what} voxels are negative (down to {float(values.min()):.4g}); "
            f"their sum is {100 * share:.2g} % of the positive total")
    if share > NEGATIVE_SHARE_LIMIT:
        raise ValueError(f"{source}: {text}, more than reconstruction noise gives "
                         f"({100 * NEGATIVE_SHARE_LIMIT:g} %); check the image's rescale intercept and units")
    log.warning("%s: %s; they are kept as they are", source, text)
    return [f"{text}; they are kept as they are"]


def check_one_patient(images: Iterable[tuple[str, str | None]]) -> None:
    """Refuse DICOM images of one analysis whose PatientID (0010,0020) differ.

    Parameters
    ----------
    images : iterable of (source, patient id)
        Each image's file or folder and its DICOM PatientID (None for volumes, which record none:
        they are not compared).

    Raises
    ------
    ValueError
        Naming the first image whose PatientID differs from the first DICOM image's, and both ids.
    """
    first: tuple[str, str] | None = None
    for source, patient_id in images:
        if patient_id is None:
            continue
        if first is None:
            first = (source, patient_id)
        elif patient_id != first[1]:
            raise ValueError(f"{source}: DICOM PatientID {patient_id!r} differs from {first[1]!r} of {first[0]}; "
                             "an image of another patient? point the inputs at one patient's images")
