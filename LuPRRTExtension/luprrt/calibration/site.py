"""The site calibration: one camera, collimator and reconstruction protocol, measured on phantoms.

A :class:`SiteCalibration` holds what a site measured on its own system (MIRD Pamphlet 23,
Dewaraja et al., J Nucl Med 2012;53:1310; MIRD Pamphlet 26, Ljungberg et al., J Nucl Med
2016;57:151): the calibration factor from a uniform cylinder (:mod:`.cylinder`), the recovery
curves from the NEMA IEC body phantom at one or more sphere-to-background ratios (:mod:`.iec`,
:mod:`.recovery`), the effective resolution that reproduces them, and the level dependence of
the image noise; with the camera, collimator, reconstruction protocol, date and who measured
it. It is saved as a versioned JSON file (:data:`SITE_CALIBRATION_FORMAT`, version
:data:`SITE_CALIBRATION_VERSION`) that ``luprrt lobequant``, ``dose``, ``cohort`` and the module
panels take (``--calibration FILE``). A recovery curve measured elsewhere is accepted as a plain
CSV table (:func:`read_recovery_table`: ``volume_ml, rc`` and optionally ``rc_sd``,
``sphere_to_background``, ``quantity``).

Recovery in OSEM depends on contrast as well as volume: :meth:`SiteCalibration.contrast_recovery`
uses the contrast-recovery curve for the lesion's own contrast, interpolated linearly between the
measured sphere-to-background ratios (the nearest curve outside their range), and says which.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .. import __version__
from ..phantom import sphere_occupancy
from .cylinder import CylinderCalibration
from .iec import IecMeasurement
from .noise import DEFAULT_NOISE_EXPONENT, noise_exponent
from .recovery import (
    OccupancyAutocorrelation,
    RecoveryCurve,
    fit_effective_fwhm,
    fit_recovery_curve,
    gaussian_sphere_recovery,
)

SITE_CALIBRATION_FORMAT = "luprrt-site-calibration"
SITE_CALIBRATION_VERSION = 1
# Spill-in from a lesion reaches about 1.5-2 FWHM of the effective resolution; never closer than 10 mm.
DEFAULT_MARGIN_FWHM = 2.0
MINIMUM_MARGIN_MM = 10.0
# At one FWHM inside a straight organ edge a Gaussian blur has moved ~1 % of the contrast across it.
DEFAULT_EDGE_MARGIN_FWHM = 1.0
# The organ-level correction's PSF reproduces the recovery of this many of the largest spheres (22-37 mm,
# the sizes nearest to organs) of the highest-contrast phantom (organs stand out of their surroundings).
_ORGAN_SPHERES = 3
# Edge overshoot: the largest sphere's RC(max) above 1 by more than this many noise SDs.
_OVERSHOOT_SDS = 4.0
_TABLE_QUANTITIES = ("contrast", "mean")


@dataclass(frozen=True)
class SiteInfo:
    """Who and what a calibration is for (free text; ``date`` ISO yyyy-mm-dd)."""

    site: str = ""
    camera: str = ""
    collimator: str = ""
    energy_window: str = ""
    reconstruction: str = ""
    resolution_recovery: bool | None = None
    date: str = ""
    performed_by: str = ""
    notes: str = ""


@dataclass(frozen=True)
class ContrastRecovery:
    """The contrast recovery used for one lesion: value, standard uncertainty and how it was chosen."""

    value: float
    sd: float
    contrast: float
    curve: str
    below_smallest_sphere: bool
    above_largest_sphere: bool


@dataclass(frozen=True)
class SiteCalibration:
    """A site's quantitative-SPECT calibration (see the module notes).

    Attributes
    ----------
    info : SiteInfo
    cps_per_mbq, cps_per_mbq_relative_sd : float or None
        Calibration factor for counts images and its relative standard uncertainty.
    bq_per_ml_scale, bq_per_ml_scale_relative_sd : float or None
        Multiplier of vendor Bq/mL images (from a cylinder reconstructed in Bq/mL).
    curves : tuple of RecoveryCurve
        Contrast, mean and max recovery curves (one per quantity and sphere-to-background ratio).
    effective_fwhm_mm, effective_fwhm_sd_mm : float or None
        Gaussian FWHM reproducing the contrast recovery of all spheres (spill-in margins).
    organ_fwhm_mm, organ_fwhm_sd_mm : float or None
        Gaussian FWHM reproducing the recovery of the largest spheres of the highest-contrast phantom:
        the PSF of the organ-level correction (in OSEM, recovery depends on contrast and size, and
        organs are large and stand out of their surroundings).
    noise_exponent : float
        Voxel SD proportional to level^p (:mod:`.noise`).
    spheres : tuple of dict
        The measured spheres (record).
    source : str
        File the calibration was read from.
    provenance : dict
    """

    info: SiteInfo = field(default_factory=SiteInfo)
    cps_per_mbq: float | None = None
    cps_per_mbq_relative_sd: float | None = None
    bq_per_ml_scale: float | None = None
    bq_per_ml_scale_relative_sd: float | None = None
    curves: tuple[RecoveryCurve, ...] = ()
    effective_fwhm_mm: float | None = None
    effective_fwhm_sd_mm: float | None = None
    noise_exponent: float = DEFAULT_NOISE_EXPONENT
    spheres: tuple[dict, ...] = ()
    source: str = ""
    provenance: dict = field(default_factory=dict)
    organ_fwhm_mm: float | None = None
    organ_fwhm_sd_mm: float | None = None

    @property
    def organ_psf_fwhm_mm(self) -> float | None:
        """FWHM of the organ-level correction (transfer matrix): the organ fit, else the effective FWHM."""
        return self.organ_fwhm_mm if self.organ_fwhm_mm is not None else self.effective_fwhm_mm

    @property
    def organ_psf_fwhm_sd_mm(self) -> float | None:
        """Its standard uncertainty."""
        return self.organ_fwhm_sd_mm if self.organ_fwhm_mm is not None else self.effective_fwhm_sd_mm

    @property
    def label(self) -> str:
        """Short name for tables: file, site, camera and date."""
        parts = [Path(self.source).name if self.source else "", self.info.site, self.info.camera, self.info.date]
        return " / ".join(p for p in parts if p) or "site calibration"

    @property
    def contrast_curves(self) -> tuple[RecoveryCurve, ...]:
        """Contrast-recovery curves, by increasing sphere-to-background ratio (None last)."""
        curves = [c for c in self.curves if c.quantity == "contrast"]
        return tuple(sorted(curves, key=lambda c: math.inf if c.sphere_to_background is None
                            else c.sphere_to_background))

    @property
    def has_recovery(self) -> bool:
        """True when contrast-recovery curves are present (recovery correction possible)."""
        return bool(self.contrast_curves)

    @property
    def smallest_sphere_ml(self) -> float:
        """Smallest calibrated volume (mL)."""
        return min(c.smallest_volume_ml for c in self.contrast_curves)

    @property
    def largest_sphere_ml(self) -> float:
        """Largest calibrated volume (mL)."""
        return max(c.largest_volume_ml for c in self.contrast_curves)

    @property
    def calibration_relative_sd(self) -> float:
        """Relative standard uncertainty of the absolute scale (0 when none was measured)."""
        for value in (self.cps_per_mbq_relative_sd, self.bq_per_ml_scale_relative_sd):
            if value is not None:
                return float(value)
        return 0.0

    @property
    def max_not_recommended(self) -> bool:
        """Max-based values are unreliable here.

        True for a resolution-recovered reconstruction; when the protocol does not say, when the spheres
        show edge overshoot: the largest sphere's maximum above its true concentration by more than
        :data:`_OVERSHOOT_SDS` voxel noise SDs (the maximum of a noisy sphere exceeds its mean by ~2-3 SDs).
        """
        if self.info.resolution_recovery is not None:
            return bool(self.info.resolution_recovery)
        return any(c.quantity == "max" and c.values[-1] - 1.0 > _OVERSHOOT_SDS * c.values_sd[-1]
                   for c in self.curves)

    def nontumour_margin(self, factor: float = DEFAULT_MARGIN_FWHM,
                         minimum_mm: float = MINIMUM_MARGIN_MM) -> tuple[float, str]:
        """(margin in mm, the rule as text): ``factor`` x the effective FWHM, at least ``minimum_mm``."""
        if self.effective_fwhm_mm is None:
            return minimum_mm, f"{minimum_mm:g} mm minimum (no effective resolution in {self.label})"
        margin = max(minimum_mm, factor * self.effective_fwhm_mm)
        return margin, (f"{factor:g} x effective FWHM {self.effective_fwhm_mm:.1f} mm ({self.label})"
                        + ("" if margin > minimum_mm else f", raised to the {minimum_mm:g} mm minimum"))

    def contrast_recovery(self, volume_ml: float, contrast: float,
                          curves: Sequence[RecoveryCurve] | None = None) -> ContrastRecovery:
        """Contrast recovery at ``volume_ml`` for a lesion-to-background ratio ``contrast``.

        Linear interpolation in the contrast between the two curves measured at the nearest
        sphere-to-background ratios below and above; outside their range the nearest curve;
        a curve without a ratio (from a table) serves every contrast. ``curves`` replaces the
        calibration's contrast curves (perturbed curves for uncertainty).
        """
        curves = tuple(curves) if curves is not None else self.contrast_curves
        if not curves:
            raise ValueError(f"{self.label} has no recovery curve: recovery correction needs an IEC phantom "
                             "calibration or a recovery table")
        ratios = [c.sphere_to_background for c in curves]
        below = volume_ml < min(c.smallest_volume_ml for c in curves)
        above = volume_ml > max(c.largest_volume_ml for c in curves)
        if len(curves) == 1 or None in ratios:
            curve = next((c for c in curves if c.sphere_to_background is None), curves[0])
            described = "the only recovery curve" if curve.sphere_to_background is None else \
                f"the {curve.sphere_to_background:g}:1 curve (the only ratio calibrated)"
            return ContrastRecovery(float(curve(volume_ml)), float(curve.standard_uncertainty(volume_ml)),
                                    float(contrast), described, below, above)
        if contrast <= ratios[0] or contrast >= ratios[-1]:
            curve = curves[0] if contrast <= ratios[0] else curves[-1]
            side = "below the smallest" if contrast <= ratios[0] else "above the largest"
            return ContrastRecovery(float(curve(volume_ml)), float(curve.standard_uncertainty(volume_ml)),
                                    float(contrast), f"the {curve.sphere_to_background:g}:1 curve (contrast "
                                    f"{contrast:.3g} {side} calibrated ratio)", below, above)
        upper = int(np.searchsorted(ratios, contrast))
        low, high = curves[upper - 1], curves[upper]
        weight = (contrast - low.sphere_to_background) / (high.sphere_to_background - low.sphere_to_background)
        value = (1 - weight) * float(low(volume_ml)) + weight * float(high(volume_ml))
        sd = math.hypot((1 - weight) * float(low.standard_uncertainty(volume_ml)),
                        weight * float(high.standard_uncertainty(volume_ml)))
        return ContrastRecovery(value, sd, float(contrast),
                                f"interpolated between the {low.sphere_to_background:g}:1 and "
                                f"{high.sphere_to_background:g}:1 curves at contrast {contrast:.3g}", below, above)

    def recovery_perturbations(self) -> list[tuple[RecoveryCurve, ...]]:
        """Contrast-curve sets with one curve moved one SD along a principal axis or its large-object FWHM.

        Principal axes: of the curve's parameters; large-object FWHM:
        :meth:`RecoveryCurve.large_object_perturbation`.

        The differences of any derived quantity between these sets and the fitted curves are
        independent first-order uncertainty contributions (:meth:`RecoveryCurve.parameter_perturbations`).
        """
        curves = self.contrast_curves
        sets = []
        for k, curve in enumerate(curves):
            moved = [curve.with_parameters(parameters) for parameters in curve.parameter_perturbations()]
            # The large-object part (towards and above the largest sphere) has its own fitted FWHM.
            moved.append(curve.large_object_perturbation())
            sets += [(*curves[:k], other, *curves[k + 1:]) for other in moved]
        return sets

    def to_json_dict(self) -> dict:
        """The versioned JSON document."""
        return {
            "format": SITE_CALIBRATION_FORMAT, "version": SITE_CALIBRATION_VERSION,
            "site": self.info.site, "camera": self.info.camera, "collimator": self.info.collimator,
            "energy_window": self.info.energy_window, "reconstruction": self.info.reconstruction,
            "resolution_recovery": self.info.resolution_recovery, "date": self.info.date,
            "performed_by": self.info.performed_by, "notes": self.info.notes,
            "calibration_factor": {"cps_per_mbq": self.cps_per_mbq,
                                   "cps_per_mbq_relative_sd": self.cps_per_mbq_relative_sd,
                                   "bq_per_ml_scale": self.bq_per_ml_scale,
                                   "bq_per_ml_scale_relative_sd": self.bq_per_ml_scale_relative_sd},
            "recovery_curves": [c.to_json_dict() for c in self.curves],
            "effective_fwhm_mm": self.effective_fwhm_mm, "effective_fwhm_sd_mm": self.effective_fwhm_sd_mm,
            "organ_fwhm_mm": self.organ_fwhm_mm, "organ_fwhm_sd_mm": self.organ_fwhm_sd_mm,
            "noise_exponent": self.noise_exponent, "spheres": list(self.spheres), "provenance": self.provenance,
        }

    @classmethod
    def from_json_dict(cls, data: dict, source: str = "") -> SiteCalibration:
        """Read the versioned JSON document (ValueError naming what is wrong)."""
        where = source or "site calibration"
        if data.get("format") != SITE_CALIBRATION_FORMAT:
            raise ValueError(f"{where}: not a LuPRRT site calibration (format {data.get('format')!r}, expected "
                             f"{SITE_CALIBRATION_FORMAT!r})")
        version = data.get("version")
        if version != SITE_CALIBRATION_VERSION:
            raise ValueError(f"{where}: site-calibration version {version!r} is not supported (this LuPRRT reads "
                             f"version {SITE_CALIBRATION_VERSION}); recalibrate or update LuPRRT")
        try:
            factor = data.get("calibration_factor") or {}
            info = SiteInfo(**{k: data.get(k, SiteInfo.__dataclass_fields__[k].default)
                               for k in SiteInfo.__dataclass_fields__})
            curves = tuple(RecoveryCurve.from_json_dict(c) for c in data.get("recovery_curves", []))
            return cls(info, _optional(factor.get("cps_per_mbq")), _optional(factor.get("cps_per_mbq_relative_sd")),
                       _optional(factor.get("bq_per_ml_scale")),
                       _optional(factor.get("bq_per_ml_scale_relative_sd")), curves,
                       _optional(data.get("effective_fwhm_mm")), _optional(data.get("effective_fwhm_sd_mm")),
                       float(data.get("noise_exponent", DEFAULT_NOISE_EXPONENT)), tuple(data.get("spheres", [])),
                       source, dict(data.get("provenance", {})), _optional(data.get("organ_fwhm_mm")),
                       _optional(data.get("organ_fwhm_sd_mm")))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{where}: malformed site calibration ({type(error).__name__}: {error})") from error


def _optional(value) -> float | None:
    return None if value is None else float(value)


def write_site_calibration(calibration: SiteCalibration, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the calibration JSON; refuses to replace an existing file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(calibration.to_json_dict(), indent=1, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def read_site_calibration(path: str | Path) -> SiteCalibration:
    """A site calibration from its JSON file, or from a plain recovery table (``.csv``, :func:`read_recovery_table`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"site calibration not found: {path}")
    if path.suffix.lower() == ".csv":
        curves = read_recovery_table(path)
        fwhm = _table_fwhm(curves)
        return SiteCalibration(SiteInfo(notes=f"recovery table {path.name}"), curves=curves,
                               effective_fwhm_mm=fwhm[0], effective_fwhm_sd_mm=fwhm[1], source=str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a JSON site calibration ({error}); a recovery table must end in .csv") \
            from error
    return SiteCalibration.from_json_dict(data, str(path))


def read_recovery_table(path: str | Path) -> tuple[RecoveryCurve, ...]:
    """Recovery curves from a CSV table measured elsewhere.

    Columns: ``volume_ml`` and ``rc`` (required); ``rc_sd`` (standard uncertainty),
    ``sphere_to_background`` (one curve per ratio) and ``quantity`` (``contrast``, the default:
    background-corrected or cold-background recovery; or ``mean``: measured mean / true sphere
    concentration, converted to contrast recovery (rc x ratio - 1) / (ratio - 1), which needs
    the ratio). At least 4 volumes per curve.
    """
    from ..tables import read_rows_csv

    rows = read_rows_csv(path)
    if not rows:
        raise ValueError(f"{path}: the recovery table is empty")
    missing = {"volume_ml", "rc"} - set(rows[0])
    if missing:
        raise ValueError(f"{path}: recovery table needs columns volume_ml and rc (missing {sorted(missing)})")
    groups: dict = {}
    for line, row in enumerate(rows, start=2):
        try:
            volume, value = float(row["volume_ml"]), float(row["rc"])
            sd = float(row["rc_sd"]) if row.get("rc_sd") else None
            ratio = float(row["sphere_to_background"]) if row.get("sphere_to_background") else None
        except ValueError:
            raise ValueError(f"{path} line {line}: volume_ml, rc, rc_sd and sphere_to_background must be "
                             "numbers") from None
        quantity = (row.get("quantity") or "contrast").strip().lower()
        if quantity not in _TABLE_QUANTITIES:
            raise ValueError(f"{path} line {line}: quantity {quantity!r} must be one of {_TABLE_QUANTITIES}")
        if quantity == "mean":
            if ratio is None or not ratio > 1:
                raise ValueError(f"{path} line {line}: a mean recovery needs its sphere_to_background (> 1) to be "
                                 "converted to contrast recovery")
            value, sd = (value * ratio - 1.0) / (ratio - 1.0), None if sd is None else sd * ratio / (ratio - 1.0)
        groups.setdefault(ratio, []).append((volume, value, sd))
    curves = []
    for ratio, points in groups.items():
        volumes, values, sds = zip(*points, strict=True)
        try:
            curves.append(fit_recovery_curve(volumes, values, None if None in sds else sds, quantity="contrast",
                                             sphere_to_background=ratio))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
    return tuple(curves)


def _table_fwhm(curves: Sequence[RecoveryCurve]) -> tuple[float, float]:
    """Effective FWHM of recovery tables: continuous spheres in a Gaussian blur (no voxel grid known)."""
    volumes = np.concatenate([c.volumes_ml for c in curves])
    values = np.concatenate([c.values for c in curves])
    sds = np.concatenate([c.values_sd for c in curves])
    fit = fit_effective_fwhm(lambda f: gaussian_sphere_recovery(volumes, f)[0], values,
                             sds if np.all(sds > 0) else None, "continuous spheres, Gaussian PSF")
    return fit.fwhm_mm, fit.fwhm_sd_mm


def build_site_calibration(info: SiteInfo, *, cylinder: CylinderCalibration | None = None,
                           phantoms: Sequence[IecMeasurement] = (),
                           recovery_tables: Sequence[RecoveryCurve] = (), inputs: dict | None = None) -> SiteCalibration:
    """Assemble a site calibration from a cylinder, IEC phantom measurements and/or recovery tables.

    Per IEC phantom (one per sphere-to-background ratio) the contrast, mean and max recovery
    curves are fitted; the effective FWHM is fitted to the contrast recovery of every sphere of
    every phantom on its own voxel grid (:func:`.recovery.grid_contrast_recovery`); the noise
    exponent from each phantom's background and largest-sphere core.

    Raises
    ------
    ValueError
        Nothing to calibrate from, or two phantoms with the same ratio.
    """
    if cylinder is None and not phantoms and not recovery_tables:
        raise ValueError("nothing to calibrate from: give a uniform-cylinder scan, IEC phantom scans or a "
                         "recovery table")
    ratios = [round(p.sphere_to_background, 3) for p in phantoms]
    if len(set(ratios)) != len(ratios):
        raise ValueError(f"two IEC phantoms with the same sphere-to-background ratio {ratios}; give one scan per "
                         "ratio")
    curves: list[RecoveryCurve] = list(recovery_tables)
    spheres: list[dict] = []
    for phantom in phantoms:
        volumes = [s.volume_ml for s in phantom.spheres]
        for quantity, value, sd in (("contrast", "contrast_recovery", "contrast_recovery_sd"),
                                    ("mean", "rc_mean", "rc_mean_sd"), ("max", "rc_max", "rc_max_sd")):
            curves.append(fit_recovery_curve(volumes, [getattr(s, value) for s in phantom.spheres],
                                             [getattr(s, sd) for s in phantom.spheres], quantity=quantity,
                                             sphere_to_background=phantom.sphere_to_background))
        spheres += phantom.rows()
    fwhm = fwhm_sd = organ = organ_sd = None
    if phantoms:
        model, measured, measured_sd = _grid_model(phantoms)
        fit = fit_effective_fwhm(model, measured, measured_sd, "spheres on the reconstruction grid, Gaussian PSF")
        fwhm, fwhm_sd = fit.fwhm_mm, fit.fwhm_sd_mm
        highest = max(phantoms, key=lambda p: p.sphere_to_background)
        model, measured, measured_sd = _grid_model([highest], largest=_ORGAN_SPHERES)
        fit = fit_effective_fwhm(model, measured, measured_sd, "largest spheres of the highest contrast")
        organ, organ_sd = fit.fwhm_mm, fit.fwhm_sd_mm
    elif recovery_tables:
        fwhm, fwhm_sd = _table_fwhm(recovery_tables)
    exponent = DEFAULT_NOISE_EXPONENT
    levels = [(p.noise.reference_level, p.noise.voxel_sd) for p in phantoms]
    levels += [(p.core_level_bq_per_ml, p.core_voxel_sd_bq_per_ml) for p in phantoms
               if math.isfinite(p.core_level_bq_per_ml)]
    if len(levels) >= 2:
        exponent = noise_exponent(*zip(*levels, strict=True))
    today = info.date or date.today().isoformat()
    provenance = {"software": "luprrt", "version": __version__, "inputs": dict(inputs or {}),
                  "cylinder": cylinder.to_json_dict() if cylinder else None,
                  "iec_phantoms": [{"source": p.source, "sphere_to_background": p.sphere_to_background,
                                    "pose": p.pose.as_dict(), "noise": p.noise.to_json_dict(),
                                    "measured_background_bq_per_ml": p.measured_background_bq_per_ml}
                                   for p in phantoms]}
    return SiteCalibration(
        replace(info, date=today),
        cylinder.cps_per_mbq if cylinder else None,
        cylinder.relative_sd if cylinder and cylinder.cps_per_mbq is not None else None,
        cylinder.bq_per_ml_scale if cylinder else None,
        cylinder.relative_sd if cylinder and cylinder.bq_per_ml_scale is not None else None,
        tuple(curves), fwhm, fwhm_sd, exponent, tuple(spheres), "", provenance, organ, organ_sd)


def _grid_model(phantoms: Sequence[IecMeasurement], largest: int | None = None):
    """(FWHM -> modelled contrast recoveries, measured values, their SDs) of the spheres on their grid.

    ``largest``: only that many of the largest spheres of each phantom.
    """
    models, measured, measured_sd = [], [], []
    for phantom in phantoms:
        grid = phantom.grid
        reference = sitk.Image([int(n) for n in grid.size], sitk.sitkUInt8)
        reference.SetOrigin(grid.origin)
        reference.SetSpacing(grid.spacing)
        chosen = sorted(phantom.spheres, key=lambda s: s.diameter_mm)[-largest:] if largest else phantom.spheres
        for sphere in chosen:
            _, fraction = sphere_occupancy(reference, sphere.centre_mm, sphere.diameter_mm / 2.0)
            models.append(OccupancyAutocorrelation(fraction, grid.spacing[::-1]))
            measured.append(sphere.contrast_recovery)
            measured_sd.append(sphere.contrast_recovery_sd)

    def model(fwhm_mm: float) -> np.ndarray:
        return np.array([m.contrast_recovery(fwhm_mm) for m in models])

    return model, np.asarray(measured), np.asarray(measured_sd)
