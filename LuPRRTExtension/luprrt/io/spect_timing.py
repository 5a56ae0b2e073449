"""A Lu-177 SPECT's voxels as activity concentration at its own acquisition time.

Dosimetry samples the time-activity curve at the scan time, so each SPECT voxel must hold the
activity present at acquisition. Most reconstructions store exactly that, but some quantitative
SPECT software exports its images in the PET Image Storage class (Units BQML, the PET Series
module's DecayCorrection (0054,1102), DICOM PS3.3 C.8.9.1), and a few write DecayCorrection into
NM headers too. Their reference time then follows that attribute:

* ``START``: the series start (SeriesDate/Time), normally the acquisition start itself;
* ``ADMIN``: the administration: the voxels are A(t_acq) e^(lambda (t_acq - t_inj)), 52 % high at
  96 h for Lu-177, so they are decayed back to the acquisition;
* ``NONE``: not decay corrected, already the activity during the acquisition.

A PET-stored image of another radionuclide (an FDG or Ga-68 PET given as the SPECT) is refused.
"""

from __future__ import annotations

import SimpleITK as sitk

from ..physics import LU177_HALF_LIFE_H, decay_factor, hours_between
from .volumes import QuantitativeImage

__all__ = ["spect_activity_at_acquisition"]

# RadionuclideHalfLife tolerance: header values of Lu-177 range 6.64-6.73 d across vendors and editions
# of the decay tables; F-18 (1.83 h) and Ga-68 (1.13 h) are two orders of magnitude away.
_LU177_HALF_LIFE_TOLERANCE_REL = 0.02


def spect_activity_at_acquisition(spect: QuantitativeImage, decay_correction: str | None = None
                                  ) -> QuantitativeImage:
    """Return ``spect`` with voxels in Bq/mL at its acquisition start (the input is not modified).

    Parameters
    ----------
    spect : QuantitativeImage
        A Lu-177 SPECT as read by :func:`luprrt.io.read_image` (NM, PET-stored or a volume).
    decay_correction : {"START", "ADMIN", "NONE"}, optional
        The reference time of the voxel values; taken from the PET header when not given.
        Volumes and NM images without the attribute are taken as activity at acquisition.

    Raises
    ------
    ValueError
        A PET-stored image whose radionuclide half-life is not Lu-177's, an unknown
        DecayCorrection value, or ``ADMIN``/``START`` without the date-times to undo it.
    """
    pet = spect.pet
    source = spect.source or "SPECT"
    if pet is not None and pet.half_life_h is not None and \
            abs(pet.half_life_h / LU177_HALF_LIFE_H - 1.0) > _LU177_HALF_LIFE_TOLERANCE_REL:
        raise ValueError(f"{source}: a PET image of {pet.radionuclide or 'another radionuclide'} (half-life "
                         f"{pet.half_life_h:.3g} h), not a Lu-177 SPECT; give the quantitative Lu-177 SPECT")
    correction = (decay_correction or (pet.decay_correction if pet is not None else None) or "NONE").upper()
    if correction == "NONE":
        return spect
    if correction not in ("START", "ADMIN"):
        raise ValueError(f"{source}: DecayCorrection {correction!r} is not one of START, ADMIN, NONE; "
                         "correct the header")
    reference = spect.injection_datetime if correction == "ADMIN" else (
        pet.series_datetime if pet is not None and pet.series_datetime is not None else spect.acquisition_datetime)
    if reference is None or spect.acquisition_datetime is None:
        raise ValueError(f"{source}: voxels are decay corrected to {correction} but the "
                         f"{'injection' if correction == 'ADMIN' else 'series'} or acquisition date-time is "
                         "missing; give the injection and acquisition times")
    elapsed_h = hours_between(reference, spect.acquisition_datetime)
    if elapsed_h == 0.0:
        return spect
    factor = float(decay_factor(elapsed_h))
    note = (f"voxels were decay corrected to {correction} ({elapsed_h:.2f} h before the acquisition); "
            f"multiplied by the Lu-177 decay factor {factor:.5f} to give the activity at acquisition")
    image = sitk.Cast(spect.image * factor, sitk.sitkFloat32)
    return QuantitativeImage(image=image, units=spect.units, source=spect.source, series_uid=spect.series_uid,
                             acquisition_datetime=spect.acquisition_datetime,
                             injection_datetime=spect.injection_datetime,
                             injected_activity_mbq=spect.injected_activity_mbq,
                             warnings=[*spect.warnings, note], pet=pet,
                             patient_id=spect.patient_id)
