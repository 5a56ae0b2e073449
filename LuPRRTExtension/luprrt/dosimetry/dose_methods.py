"""The dose methods: one registry that the dosimetry workflow, ``luprrt dose``, the Logic and the panel read.

Two kinds of method give a region's absorbed dose:

* **region** methods turn a region's time-integrated activity (MBq h), volume (mL) and mass (g)
  into its mean dose (Gy): sphere S-value (lesions), organ S-value (kidneys, liver, spleen) and
  local deposition (every region);
* **voxel** methods turn the voxel TIA map (Bq h/mL) and the tissue density into a dose map (Gy)
  whose region means and percentiles are reported: voxel-wise local deposition and the voxel
  S-value convolution (electrons and photons, :mod:`.vsv_kernel`).

A new method is one :func:`register_dose_method` call; the dose table gets its rows, the panel
its choice (voxel methods) and ``luprrt dose --help`` its line. DICOM reports code each method
(:data:`luprrt.io.DOSE_METHODS`): a new method also needs its code there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import SimpleITK as sitk

from ..physics import LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G
from ..provenance import ProgressCallback
from .dose import local_deposition_dose, organ_s_value_dose_gy, sphere_s_value_dose_gy, voxel_s_value_dose
from .svalues import ORGAN_SELF_S_VALUES
from .vsv_kernel import build_voxel_s_value_kernel

__all__ = ["DOSE_METHODS", "DoseMethod", "dose_method_names", "register_dose_method"]

# Roles with an OpenDose organ self S-value, in the table's order.
ORGAN_S_VALUE_ROLES = tuple(dict.fromkeys(organ for _, organ in ORGAN_SELF_S_VALUES))


@dataclass(frozen=True)
class DoseMethod:
    """A way to compute absorbed dose, as the dose table names it.

    Attributes
    ----------
    name : str
        The ``method`` column value, the panel's choice and the key of the DICOM code.
    description : str
        A few words for help texts, tooltips and the RT Dose's Dose Comment.
    kind : {"region", "voxel"}
        Region methods implement ``region_dose_gy``, voxel methods ``dose_map``.
    roles : tuple of str or None
        Region methods: the segment roles they apply to (None: every role).
    region_dose_gy : callable, optional
        ``(tia_mbq_h, role, volume_ml, mass_g, phantom) -> Gy``; raises ValueError where undefined
        (e.g. a sphere outside the tabulated masses).
    dose_map : callable, optional
        ``(tia_bq_h_per_ml, density_g_per_ml, *, kernel_radius_mm, progress) -> Gy map``, density an
        image on the TIA grid or one value (g/mL), ``kernel_radius_mm`` the fine kernel's reach
        (:func:`.vsv_kernel.build_voxel_s_value_kernel`) for methods that convolve.
    optional : bool
        A voxel method that ``--no-voxel-dose`` skips (it costs seconds per cycle).
    """

    name: str
    description: str
    kind: str
    roles: tuple[str, ...] | None = None
    region_dose_gy: Callable[[float, str, float, float, str], float] | None = None
    dose_map: Callable[..., sitk.Image] | None = None
    optional: bool = False

    def applies_to(self, role: str) -> bool:
        """Whether this region method gives a dose for a region of ``role``."""
        return self.kind == "region" and (self.roles is None or role in self.roles)


DOSE_METHODS: dict[str, DoseMethod] = {}


def register_dose_method(method: DoseMethod) -> DoseMethod:
    """Add ``method`` to :data:`DOSE_METHODS` (a name is registered once)."""
    if method.kind not in ("region", "voxel"):
        raise ValueError(f"dose method {method.name!r}: kind must be 'region' or 'voxel', got {method.kind!r}")
    needed = "region_dose_gy" if method.kind == "region" else "dose_map"
    if getattr(method, needed) is None:
        raise ValueError(f"dose method {method.name!r} of kind {method.kind!r} needs {needed}")
    if method.name in DOSE_METHODS:
        raise ValueError(f"dose method {method.name!r} is already registered")
    DOSE_METHODS[method.name] = method
    return method


def dose_method_names(kind: str | None = None) -> tuple[str, ...]:
    """Names of the registered methods (of one ``kind``), in registration order."""
    return tuple(name for name, method in DOSE_METHODS.items() if kind is None or method.kind == kind)


def _sphere(tia_mbq_h: float, role: str, volume_ml: float, mass_g: float, phantom: str) -> float:
    return float(sphere_s_value_dose_gy(tia_mbq_h, volume_ml, mass_g / volume_ml, extrapolate=True))


def _organ(tia_mbq_h: float, role: str, volume_ml: float, mass_g: float, phantom: str) -> float:
    return float(organ_s_value_dose_gy(tia_mbq_h, role, phantom, patient_mass_g=mass_g))


def _local(tia_mbq_h: float, role: str, volume_ml: float, mass_g: float, phantom: str) -> float:
    return tia_mbq_h * LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G / mass_g


def _voxel_local(tia: sitk.Image, density, *, kernel_radius_mm: float, progress: ProgressCallback) -> sitk.Image:
    return local_deposition_dose(tia, density)


def _voxel_s_value(tia: sitk.Image, density, *, kernel_radius_mm: float, progress: ProgressCallback) -> sitk.Image:
    kernel = build_voxel_s_value_kernel(tuple(tia.GetSpacing()), kernel_radius_mm)  # cached by voxel size
    return voxel_s_value_dose(tia, kernel, density, progress=progress)


register_dose_method(DoseMethod(
    "sphere_s_value", "lesion self-dose from the soft-tissue sphere S-value of its mass", "region",
    roles=("lesion",), region_dose_gy=_sphere))
register_dose_method(DoseMethod(
    "organ_s_value", "organ self-dose from the OpenDose S-value scaled to the patient's organ mass", "region",
    roles=ORGAN_S_VALUE_ROLES, region_dose_gy=_organ))
register_dose_method(DoseMethod(
    "local_deposition", "all electron energy of the region's TIA absorbed in its mass", "region",
    region_dose_gy=_local))
register_dose_method(DoseMethod(
    "voxel_local_deposition", "voxel-wise local energy deposition", "voxel", dose_map=_voxel_local))
register_dose_method(DoseMethod(
    "voxel_s_value", "voxel S-value convolution (electrons, and photons over the whole image)", "voxel",
    dose_map=_voxel_s_value, optional=True))
