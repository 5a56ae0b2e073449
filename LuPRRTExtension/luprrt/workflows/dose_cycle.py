"""Dosimetry of one treatment cycle: registration, region time-activity, TIA and doses by several methods.

For every reported region (:mod:`.dose_regions`) the cycle gives rows side by side:

* ``sphere_s_value`` (lesions: soft-tissue sphere self S-value of the lesion's mass and CT density) or
  ``organ_s_value`` (kidneys, liver, spleen: OpenDose self S-value, mass-scaled to the
  patient's organ), from the region's time-integrated activity (TIA);
* ``local_deposition``: all electron energy of the region's TIA absorbed in its mass
  (0.0853 Gy per MBq h / g from 147.9 keV of electrons per decay, ICRP-107);
* ``voxel_local_deposition`` and ``voxel_s_value``: mean, D2, D50 and D98 of the voxel dose
  maps (local deposition, and the FFT convolution of the voxel TIA map with the voxel S-value
  kernel), both divided by the CT density.

The region TIA comes from a fit of its time-activity curve when the cycle has two or more
scans; a cycle with one scan gets single-time-point TIAs instead: Haenscheid 2018 (no
kinetics needed) and the hybrid scheme (the earlier cycle's fitted TIA scaled by the activity
ratio at the scan time, exact for any curve shape; and, when the earlier fit is mono-exponential,
Madsen 2018 with its effective half-life), each in its own rows (:mod:`.dose_tac`). The voxel TIA map of a
single-scan cycle is Haenscheid's, voxel by voxel. One TIA per region and method is *primary*
(the fit; for one scan the hybrid when possible, else Haenscheid): cumulative doses and organ
limits use it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..calibration import DEFAULT_MARGIN_FWHM, SiteCalibration
from ..dosimetry import (
    DEFAULT_KERNEL_RADIUS_MM,
    DOSE_METHODS,
    HuDensityCalibration,
    TimeActivityFit,
    biologically_effective_dose_gy,
    density_image_from_ct,
    dose_method_names,
    haenscheid_tia_mbq_h,
    voxel_time_integrated_activity,
)
from ..errors import fix
from ..grid import image_on_grid, same_grid
from ..physics import BQ_PER_MBQ, SOFT_TISSUE_DENSITY_G_PER_ML
from ..provenance import ProgressCallback, no_progress
from ..registration import body_mask, register_deformable, register_rigid, resample_to
from .dose_calibrated import (
    CALIBRATED_DOSE_COLUMNS,
    CalibratedActivities,
    calibrated_activities,
    calibrated_regions,
    dose_budget,
    tia_function,
)
from .dose_inputs import CycleData
from .dose_regions import CycleRegions, build_cycle_regions
from .dose_tac import (
    POPULATION_UPTAKE_MODELS,
    TAC_MODELS,
    PeakTailFit,
    PopulationUptake,
    TiaEstimate,
    fit_reason,
    fit_region_tac,
    fitted_estimate,
    single_scan_estimates,
)

log = logging.getLogger(__name__)

METHODS = dose_method_names()  # every registered dose method (luprrt.dosimetry.dose_methods)
REGISTRATIONS = ("none", "rigid", "deformable")
DOSE_COLUMNS = ("patient_id", "cycle", "region", "role", "side", "route", "lesion_id", "method", "tia_mbq_h",
                "tia_sd_mbq_h", "mass_g", "dose_gy", "dose_gy_sd", "bed_gy", "cumulative_dose_gy", "d2_gy",
                "d50_gy", "d98_gy", "fit_model", "fit_reason", "fit_flags")
TAC_COLUMNS = ("patient_id", "cycle", "region", "role", "side", "route", "lesion_id", "series", "time_h",
               "activity_mbq", "uncorrected_activity_mbq", "fit_model")
REGISTRATION_COLUMNS = ("patient_id", "cycle", "time_h", "spect", "registration", "metric_mattes_mi",
                        "metric_mattes_mi_before", "body_dice_before", "body_dice_after")
# Dose rows that get an uncertainty budget with a site calibration (the issue's lesion and kidney doses).
UNCERTAINTY_ROLES = ("lesion", "kidney")
AIR_HU = -1000.0


@dataclass(frozen=True)
class DosimetryOptions:
    """Method choices of patient dosimetry.

    tac_model : region time-activity model, one of :data:`.dose_tac.TAC_MODELS` (``"auto"``: the
        rule of :mod:`.dose_tac`)
    population_uptake_rate_per_h, population_uptake_rate_sd_per_h : population uptake rate constant
        (1/h) of the constrained bi-exponentials and the SD of its prior (``biexp_prior``)
    pvc_fwhm_mm : system resolution (FWHM, mm) for the GTM partial-volume correction of region
        activities; None = no correction (with a site calibration: its effective FWHM)
    site_calibration : a site's calibration: lesions recovery-corrected, organs corrected by the GTM
        with the effective FWHM, dose uncertainty by source (:mod:`.dose_calibrated`)
    margin_fwhm : spill-in margin of the lesions' non-tumour background, in effective FWHM
    boundary_uncertainty : include the segmentation-boundary (+-1 voxel) uncertainty (two more region
        builds per cycle)
    supersampling : sub-voxels per axis for the fractional occupancy of regions on the SPECT grid
    voxel_integration : ``"analytic"`` or ``"trapezoid"`` voxel-wise TIA
    s_value_phantom : OpenDose phantom of the organ S-values (``"AM"`` or ``"AF"``)
    kernel_radius_mm : voxel S-value kernel: photons within this distance on the voxel grid, beyond it on
        the coarse grid over the whole image (mm)
    calibration : CT number to density
    limits_method : dose method of the kidney limit checks
    risk_factors : kidney risk factors present (BED limit 28 Gy instead of 40 Gy)
    next_activity_gbq : activity of the projected next cycle (GBq)
    hematocrit : haematocrit (0-1) for the blood-based marrow dose's RMBLR = 0.19 / (1 - HCT); None = 1,
        the peptide value of the EANM guideline (:func:`luprrt.dosimetry.marrow.red_marrow_to_blood_ratio`)
    curve_samples : points of each fitted curve in the time-activity table
    """

    tac_model: str = "auto"
    population_uptake_rate_per_h: float | None = None
    population_uptake_rate_sd_per_h: float | None = None
    pvc_fwhm_mm: float | None = None
    site_calibration: SiteCalibration | None = None
    margin_fwhm: float = DEFAULT_MARGIN_FWHM
    boundary_uncertainty: bool = True
    supersampling: int = 3
    voxel_integration: str = "analytic"
    s_value_phantom: str = "AM"
    kernel_radius_mm: float = DEFAULT_KERNEL_RADIUS_MM
    calibration: HuDensityCalibration = field(default_factory=HuDensityCalibration)
    limits_method: str = "organ_s_value"
    risk_factors: bool = False
    next_activity_gbq: float = 7.4
    hematocrit: float | None = None
    curve_samples: int = 61

    def __post_init__(self):
        if self.tac_model not in TAC_MODELS:
            raise ValueError(f"unknown time-activity model {self.tac_model!r}; expected one of {TAC_MODELS}")
        if self.tac_model in POPULATION_UPTAKE_MODELS:
            rate, sd = self.population_uptake_rate_per_h, self.population_uptake_rate_sd_per_h
            if rate is None or not rate > 0:
                raise ValueError(f"the {self.tac_model} model needs a population uptake rate constant > 0 (1/h), got "
                                 f"{rate}: {fix('population_uptake_rate_per_h', '0.1')} (e.g. the median of fully "
                                 f"sampled patients' bi-exponential fits)")
            if self.tac_model == "biexp_prior" and (sd is None or not sd > 0):
                raise ValueError(f"the biexp_prior model needs the prior SD of the uptake rate constant > 0 (1/h), got "
                                 f"{sd}: {fix('population_uptake_rate_sd_per_h', '0.03')}")
        kidney_methods = tuple(m for m in METHODS if m != "sphere_s_value")
        if self.limits_method not in kidney_methods:
            raise ValueError(f"limits_method {self.limits_method!r} does not give a kidney dose; use one of "
                             f"{kidney_methods}")
        if self.curve_samples < 2:
            raise ValueError(f"curve_samples must be >= 2, got {self.curve_samples}")

    @property
    def population_uptake(self) -> PopulationUptake | None:
        """The constrained bi-exponentials' population uptake rate (None when not set)."""
        if self.population_uptake_rate_per_h is None:
            return None
        return PopulationUptake(self.population_uptake_rate_per_h, self.population_uptake_rate_sd_per_h)


@dataclass
class CycleSafety:
    """What the organ limits need from one cycle (primary TIA, ``limits_method`` for the kidneys)."""

    activity_gbq: float
    kidney_dose_gy: float
    kidney_effective_half_life_h: float
    marrow_dose_gy: float | None
    marrow_method: str | None


@dataclass
class CycleDosimetry:
    """Everything one cycle produced; ``primary[i]`` marks the rows that cumulative doses add up."""

    cycle: int
    regions: CycleRegions
    times_h: np.ndarray
    fits: dict[str, TimeActivityFit | PeakTailFit]
    dose_rows: list[dict]
    primary: list[bool]
    tac_rows: list[dict]
    registration_rows: list[dict]
    tia_bq_h_per_ml: sitk.Image
    dose_gy: sitk.Image
    safety: CycleSafety
    body_activity_mbq: np.ndarray | None = None  # SPECT activity inside the body at each scan (MBq)


def cycle_dosimetry(patient_id: str, cycle: CycleData, *, options: DosimetryOptions, registration: str,
                    voxel_dose: bool, reference_fits: dict[str, TimeActivityFit | PeakTailFit],
                    progress: ProgressCallback | None = None) -> CycleDosimetry:
    """Dosimetry of one cycle (see the module docstring).

    Parameters
    ----------
    patient_id : str
        Written into every row.
    cycle : CycleData
        The cycle's CT, segmentation and scans (validated by :func:`.dose_inputs.validate_cycle`).
    options : DosimetryOptions
    registration : ``"none"``, ``"rigid"`` or ``"deformable"``
        How a scan with its own CT is brought onto the cycle's CT (scans sharing it need nothing).
    voxel_dose : bool
        Compute the voxel S-value (FFT) dose map.
    reference_fits : dict
        Region name -> fit of an earlier cycle, for the hybrid single-time-point TIA.
    progress : callable, optional
    """
    progress = progress or no_progress
    if registration not in REGISTRATIONS:
        raise ValueError(f"unknown registration {registration!r}; expected one of {REGISTRATIONS}")
    progress(0.0, f"cycle {cycle.cycle}: registration")
    images, registration_rows = _scans_on_reference_grid(patient_id, cycle, registration)
    grid = images[0]
    times = np.array([p.hours_post_injection for p in cycle.time_points])
    progress(0.2, f"cycle {cycle.cycle}: regions on the SPECT grid")
    site = options.site_calibration
    calibrated = uncorrected_curves = None
    if site is None:
        regions = build_cycle_regions(cycle.segmentation, cycle.ct, grid, pvc_fwhm_mm=options.pvc_fwhm_mm,
                                      supersampling=options.supersampling, calibration=options.calibration)
        progress(0.35, f"cycle {cycle.cycle}: time-activity curves")
        curves = region_time_activity(regions, images, times, options.tac_model, reference_fits,
                                      population=options.population_uptake)
    else:
        regions = calibrated_regions(cycle.segmentation, cycle.ct, grid, site, pvc_fwhm_mm=options.pvc_fwhm_mm,
                                     supersampling=options.supersampling, density_calibration=options.calibration)
        progress(0.3, f"cycle {cycle.cycle}: recovery-corrected activities and their uncertainty")
        calibrated = calibrated_activities(regions, images, site, segmentation=cycle.segmentation, ct=cycle.ct,
                                           supersampling=options.supersampling,
                                           density_calibration=options.calibration, margin_fwhm=options.margin_fwhm,
                                           boundary_uncertainty=options.boundary_uncertainty)
        curves = region_time_activity(regions, images, times, options.tac_model, reference_fits,
                                      measured=(calibrated.activity_mbq, calibrated.uncorrected_mbq),
                                      population=options.population_uptake)
        uncorrected_curves = region_time_activity(regions, images, times, options.tac_model, {},
                                                  measured=(calibrated.uncorrected_mbq, calibrated.uncorrected_mbq),
                                                  population=options.population_uptake)
    if curves.clipped_pieces:
        log.warning("cycle %d: negative corrected concentrations set to 0 in %s", cycle.cycle,
                    curves.clipped_pieces)
    progress(0.45, f"cycle {cycle.cycle}: voxel time-integrated activity")
    if times.size >= 2:
        voxel = voxel_time_integrated_activity(images, times, integration=options.voxel_integration)
        tia_map = voxel.tia_bq_h_per_ml
        voxel_model = f"voxel_{options.voxel_integration}"
    else:
        tia_map = image_on_grid(np.asarray(haenscheid_tia_mbq_h(sitk.GetArrayViewFromImage(images[0]), times[0]),
                                                dtype=np.float32), grid)
        voxel_model = "voxel_haenscheid"
    progress(0.55, f"cycle {cycle.cycle}: dose maps")
    maps = dose_maps(tia_map, cycle.ct, voxel_dose=voxel_dose, calibration=options.calibration,
                     kernel_radius_mm=options.kernel_radius_mm, inside=regions.piece_labels_grid > 0,
                     progress=_scaled(progress, 0.6, 0.9))
    progress(0.92, f"cycle {cycle.cycle}: tables")
    rows, primary = region_dose_rows(regions, curves.estimates, tia_map, maps, voxel_model,
                                     options.s_value_phantom)
    columns = DOSE_COLUMNS
    if calibrated is not None:
        rows = calibrated_dose_rows(rows, regions, curves, uncorrected_curves, calibrated, site, times,
                                    reference_fits, options.s_value_phantom, options.population_uptake)
        columns = DOSE_COLUMNS + CALIBRATED_DOSE_COLUMNS
    identity = {"patient_id": patient_id, "cycle": cycle.cycle}
    rows = [{column: (identity | row).get(column) for column in columns} for row in rows]
    tac = [{column: (identity | row).get(column) for column in TAC_COLUMNS}
           for row in tac_rows(regions, curves, options.curve_samples)]
    safety = _cycle_safety(cycle, regions, rows, primary, curves.estimates, options, voxel_dose)
    progress(1.0, f"cycle {cycle.cycle}: done")
    return CycleDosimetry(cycle.cycle, regions, times, curves.fits, rows, primary, tac, registration_rows,
                          tia_map, dose_map_of_record(maps), safety,
                          body_activity_mbq(images, regions.piece_labels_grid > 0))


def body_activity_mbq(images: list[sitk.Image], inside: np.ndarray) -> np.ndarray:
    """Activity (MBq) inside the body of each SPECT.

    Parameters
    ----------
    images : list of SimpleITK.Image
        SPECT activity concentration images (Bq/mL) on one grid.
    inside : numpy.ndarray
        Boolean body mask on the images' grid, indexed (z, y, x).

    Returns
    -------
    numpy.ndarray
        Activity inside the mask (MBq), one per image.
    """
    voxel_ml = float(np.prod(images[0].GetSpacing())) / 1000.0
    return np.array([float(np.sum(sitk.GetArrayViewFromImage(image)[inside], dtype=np.float64)) * voxel_ml
                     / BQ_PER_MBQ for image in images])


@dataclass
class RegionTimeActivity:
    """Time-activity curves of every region of a :class:`.dose_regions.CycleRegions` and their TIAs.

    ``activity_mbq[r, k]`` (partial-volume corrected when the regions have a GTM) and
    ``uncorrected_mbq[r, k]`` at ``times_h[k]``; ``fits`` by region name (two or more scans);
    ``estimates[r]`` the TIA estimates of region ``r``.
    """

    times_h: np.ndarray
    activity_mbq: np.ndarray
    uncorrected_mbq: np.ndarray
    fits: dict[str, TimeActivityFit | PeakTailFit]
    estimates: list[list[TiaEstimate]]
    clipped_pieces: list[str]


def region_time_activity(regions: CycleRegions, images: list[sitk.Image], times_h, model: str = "auto",
                         reference_fits: dict | None = None,
                         measured: tuple[np.ndarray, np.ndarray] | None = None,
                         population: PopulationUptake | None = None) -> RegionTimeActivity:
    """Region activities in every scan (one pass each) and their TIAs (fits, or single-scan estimates).

    Parameters
    ----------
    regions : CycleRegions
        Built on the grid of ``images``.
    images : list of SimpleITK.Image
        Activity concentration (Bq/mL) at ``times_h`` (h after administration, increasing).
    model : str
        Time-activity model (:data:`.dose_tac.TAC_MODELS`).
    reference_fits : dict, optional
        Earlier-cycle fits by region name, for the hybrid TIA of a single scan.
    measured : (activity, uncorrected activity), optional
        (regions, scans) activities already measured (MBq), e.g. recovery-corrected
        (:mod:`.dose_calibrated`); the images are then not read again.
    population : PopulationUptake, optional
        Population uptake rate of the constrained bi-exponential models.
    """
    times = np.asarray(times_h, dtype=float)
    if times.ndim != 1 or times.size != len(images) or times.size == 0:
        raise ValueError(f"{np.atleast_1d(times).size} scan times for {len(images)} images")
    if measured is None:
        scans = [regions.activity(image) for image in images]
        activity = np.stack([m.activity_mbq for m in scans], axis=1)
        uncorrected = np.stack([m.uncorrected_mbq for m in scans], axis=1)
        clipped = sorted({name for m in scans for name in m.clipped_pieces})
    else:
        activity, uncorrected = (np.nan_to_num(np.asarray(a, dtype=float)) for a in measured)
        clipped = []
    fits: dict[str, TimeActivityFit | PeakTailFit] = {}
    if times.size >= 2:
        estimates = [_fitted(region.name, times, activity[r], model, fits, population)
                     for r, region in enumerate(regions.regions)]
    else:
        estimates = [single_scan_estimates(times[0], activity[r, 0], (reference_fits or {}).get(region.name))
                     for r, region in enumerate(regions.regions)]
    if clipped:
        note = f"negative corrected concentration set to 0 in {clipped}"
        estimates = [[e.flagged(note) for e in per_region] for per_region in estimates]
    return RegionTimeActivity(times, activity, uncorrected, fits, estimates, clipped)


def dose_maps(tia_bq_h_per_ml: sitk.Image, ct_hu: sitk.Image | None, *, voxel_dose: bool,
              calibration: HuDensityCalibration | None = None,
              kernel_radius_mm: float = DEFAULT_KERNEL_RADIUS_MM, inside: np.ndarray | None = None,
              methods: tuple[str, ...] | None = None, progress: ProgressCallback | None = None
              ) -> dict[str, sitk.Image]:
    """Dose maps (Gy) of a TIA map by every registered voxel dose method, by method name.

    Density from ``ct_hu`` resampled onto the TIA grid (linear; air outside the CT), or soft tissue
    (1.03 g/mL) without a CT. Without ``voxel_dose`` the optional methods (the voxel S-value
    convolution) are skipped; ``methods`` limits the maps to those named. Voxels outside ``inside``
    (e.g. the body) are set to 0: there the dose is SPECT blur in air divided by the density of air.

    Parameters
    ----------
    tia_bq_h_per_ml : SimpleITK.Image
        Voxel time-integrated activity concentration (Bq h/mL).
    ct_hu : SimpleITK.Image or None
        CT in HU for the density; None: soft tissue everywhere.
    voxel_dose : bool
        Also run the optional voxel dose methods (the voxel S-value convolution).
    calibration : HuDensityCalibration, optional
        HU -> density nodes (g/mL); the default calibration when None.
    kernel_radius_mm : float
        Radius of the fine voxel S-value kernel (mm).
    inside : numpy.ndarray, optional
        Boolean mask (z, y, x) on the TIA grid outside which the doses are 0.
    methods : tuple of str, optional
        Names of the voxel dose methods to run; None: all registered ones.
    progress : callable, optional
        Progress callback, shared out over the methods.

    Returns
    -------
    dict of str to SimpleITK.Image
        Absorbed-dose map (Gy) on the TIA grid by method name.
    """
    density = SOFT_TISSUE_DENSITY_G_PER_ML
    if ct_hu is not None:
        density = density_image_from_ct(resample_to(ct_hu, tia_bq_h_per_ml, interpolator="linear",
                                                    default_value=AIR_HU), calibration)
    wanted = [method for name, method in DOSE_METHODS.items() if method.kind == "voxel"
              and (methods is None or name in methods) and (voxel_dose or not method.optional)]
    maps = {}
    for index, method in enumerate(wanted):
        dose = method.dose_map(tia_bq_h_per_ml, density, kernel_radius_mm=kernel_radius_mm,
                               progress=_scaled(progress or no_progress, index / len(wanted),
                                                (index + 1) / len(wanted)))
        maps[method.name] = _masked(dose, inside) if inside is not None else dose
    return maps


def dose_map_of_record(maps: dict[str, sitk.Image]) -> sitk.Image:
    """The dose map a cycle exports: the voxel S-value map when it was computed, else local deposition."""
    return maps.get("voxel_s_value", maps["voxel_local_deposition"])


def region_dose_rows(regions: CycleRegions, estimates: list[list[TiaEstimate]], tia_map: sitk.Image,
                     maps: dict[str, sitk.Image], voxel_model: str,
                     s_value_phantom: str = "AM") -> tuple[list[dict], list[bool]]:
    """Dose rows of every region (columns of :data:`DOSE_COLUMNS` except patient and cycle).

    ``estimates[r]`` are the TIA estimates of region ``r``: every registered region dose method
    that applies to the region's role gives a row per estimate; every map of ``maps`` (voxel
    method name -> dose map, :func:`dose_maps`) gives one row. Returns the rows and which of them
    are primary.
    """
    mass = regions.mass_g
    volume = regions.volume_ml
    voxel_tia = regions.mean(tia_map) * regions.occupied_volume_ml / BQ_PER_MBQ
    voxel_stats = {method: (regions.mean(image), regions.dose_percentiles(image)) for method, image in maps.items()}
    rows, primary = [], []
    for r, region in enumerate(regions.regions):
        base = region.tags() | {"mass_g": float(mass[r])}
        methods = [name for name, method in DOSE_METHODS.items() if method.applies_to(region.role)]
        for estimate in estimates[r]:
            for method in methods:
                dose, flags = _region_dose(method, region.role, estimate.tia_mbq_h, float(volume[r]),
                                           float(mass[r]), s_value_phantom)
                rows.append(base | _tia_columns(estimate, flags) | _dose_columns(dose, estimate, region.role)
                            | {"method": method})
                primary.append(estimate.primary)
        reference = next((e for e in estimates[r] if e.primary), None)
        for method in maps:
            mean, percentiles = voxel_stats[method]
            dose = float(mean[r])
            row = base | {"method": method, "tia_mbq_h": float(voxel_tia[r]), "tia_sd_mbq_h": None,
                          "dose_gy": dose, "dose_gy_sd": None, "fit_model": voxel_model,
                          "fit_reason": "voxel-wise TIA map, every voxel's own curve", "fit_flags": ""}
            row |= {key: float(values[r]) for key, values in percentiles.items()}
            if region.role == "kidney" and reference is not None:
                row["bed_gy"] = _bed(dose, reference.effective_half_life_h)
            rows.append(row)
            primary.append(True)
    return rows, primary


def calibrated_dose_rows(rows: list[dict], regions: CycleRegions, curves: RegionTimeActivity,
                         uncorrected: RegionTimeActivity, calibrated: CalibratedActivities,
                         calibration: SiteCalibration, times_h: np.ndarray, reference_fits: dict,
                         s_value_phantom: str, population: PopulationUptake | None = None) -> list[dict]:
    """Rows of the calibrated dose: uncorrected and corrected TIA (MBq h) and dose (Gy) side by side.

    Each row also carries the correction and calibration, and the dose uncertainty by source with its
    95 % interval (primary region-TIA rows of lesions and kidneys).
    """
    index = {region.name: r for r, region in enumerate(regions.regions)}
    density = regions.density_g_per_ml
    tia_functions: dict = {}
    out = []
    for row in rows:
        r = index[row["region"]]
        method = row["method"]
        extra = {"calibration": calibration.label}
        if DOSE_METHODS[method].kind == "region":
            extra["correction"] = calibrated.correction[r]
            other = next((e for e in uncorrected.estimates[r] if e.model == row["fit_model"]),
                         next((e for e in uncorrected.estimates[r] if e.primary), None))
            if other is not None:
                dose, _ = _region_dose(method, row["role"], other.tia_mbq_h, float(regions.volume_ml[r]),
                                       float(regions.mass_g[r]), s_value_phantom)
                extra |= {"uncorrected_tia_mbq_h": other.tia_mbq_h, "uncorrected_dose_gy": dose}
            estimate = next((e for e in curves.estimates[r] if e.model == row["fit_model"]), None)
            if (row["role"] in UNCERTAINTY_ROLES and estimate is not None and estimate.primary
                    and math.isfinite(row["dose_gy"])):
                role, rho = row["role"], float(density[r])

                def dose_of(tia: float, mass: float, method=method, role=role, rho=rho) -> float:
                    return _region_dose(method, role, tia, mass / rho, mass, s_value_phantom)[0]

                key = (r, estimate.model)
                if key not in tia_functions:  # one set of refits per region, shared by its dose methods
                    tia_functions[key] = _memoised(tia_function(times_h, estimate.model,
                                                                reference_fits.get(row["region"]), population))
                budget = dose_budget(calibrated, r, tia_functions[key], dose_of, float(regions.mass_g[r]),
                                     calibration.calibration_relative_sd)
                extra |= budget.columns(0, "dose_gy", sd="u")
        else:
            extra["correction"] = "none: voxel dose map of the uncorrected SPECT"
        out.append(row | extra)
    return out


def _memoised(function):
    """``function`` of an activity vector, evaluated once per distinct vector."""
    cache: dict = {}

    def wrapped(activity: np.ndarray) -> float:
        key = tuple(np.asarray(activity, dtype=float).round(12).tolist())
        if key not in cache:
            cache[key] = function(activity)
        return cache[key]

    return wrapped


def _tia_columns(estimate: TiaEstimate, extra_flags: list[str]) -> dict:
    return {"tia_mbq_h": estimate.tia_mbq_h, "tia_sd_mbq_h": estimate.tia_sd_mbq_h,
            "fit_model": estimate.model, "fit_reason": estimate.reason,
            "fit_flags": "; ".join([*estimate.flags, *extra_flags])}


def _dose_columns(dose: float, estimate: TiaEstimate, role: str) -> dict:
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = dose * estimate.tia_sd_mbq_h / estimate.tia_mbq_h if estimate.tia_mbq_h > 0 else math.nan
    columns = {"dose_gy": dose, "dose_gy_sd": float(sd)}
    if role == "kidney":
        columns["bed_gy"] = _bed(dose, estimate.effective_half_life_h)
    return columns


def _region_dose(method: str, role: str, tia_mbq_h: float, volume_ml: float, mass_g: float,
                 phantom: str) -> tuple[float, list[str]]:
    """Mean dose (Gy) of a region by a registered region method; NaN with a flag if undefined."""
    if not (math.isfinite(tia_mbq_h) and mass_g > 0):
        return math.nan, []
    try:
        return float(DOSE_METHODS[method].region_dose_gy(tia_mbq_h, role, volume_ml, mass_g, phantom)), []
    except ValueError as error:
        return math.nan, [f"{method}: {error}"]


def _bed(dose_gy: float, effective_half_life_h: float) -> float | None:
    if not (math.isfinite(dose_gy) and dose_gy >= 0 and math.isfinite(effective_half_life_h)
            and effective_half_life_h > 0):
        return None
    return float(biologically_effective_dose_gy(dose_gy, effective_half_life_h))


def _fitted(name: str, times: np.ndarray, activity: np.ndarray, model: str, fits: dict,
            population: PopulationUptake | None = None) -> list[TiaEstimate]:
    try:
        fit = fit_region_tac(times, np.maximum(activity, 0.0), model, population)
    except ValueError as error:
        return [TiaEstimate("none", math.nan, math.nan, math.nan, (f"no fit: {error}",),
                            reason=f"{model}: no fit (see fit_flags)")]
    fits[name] = fit
    return [fitted_estimate(fit, fit_reason(model, fit))]


def kidney_dose_and_half_life(regions: CycleRegions, rows: list[dict], primary: list[bool],
                              estimates: list[list[TiaEstimate]], method: str) -> tuple[float, float]:
    """Kidney dose (Gy) and effective half-life (h) of a cycle, for BED and limits.

    The dose is the mass-weighted mean of the kidney regions' primary ``method`` rows, the
    half-life their mass-weighted effective half-life.

    Raises
    ------
    ValueError
        No kidney region, or a kidney dose or half-life that could not be computed.
    """
    kidneys = [r for r, region in enumerate(regions.regions) if region.role == "kidney"]
    if not kidneys:
        raise ValueError("no kidney region on the SPECT grid: the kidney segments are missing or outside the "
                         "SPECT field of view")
    mass = regions.mass_g[kidneys]
    doses = np.array([_primary_dose(rows, primary, regions.regions[r].name, method) for r in kidneys])
    teff = np.array([next(e.effective_half_life_h for e in estimates[r] if e.primary) for r in kidneys])
    if not (np.all(np.isfinite(doses)) and np.all(np.isfinite(teff))):
        raise ValueError(f"the kidney dose could not be computed (doses {doses.tolist()} Gy, effective "
                         f"half-lives {teff.tolist()} h); see the kidney rows' fit_flags")
    return float(mass @ doses / mass.sum()), float(mass @ teff / mass.sum())


def _primary_dose(rows: list[dict], primary: list[bool], region: str, method: str) -> float:
    return next(row["dose_gy"] for row, p in zip(rows, primary, strict=True)
                if p and row["region"] == region and row["method"] == method)


def _cycle_safety(cycle: CycleData, regions: CycleRegions, rows: list[dict], primary: list[bool],
                  estimates: list[list[TiaEstimate]], options: DosimetryOptions,
                  voxel_dose: bool) -> CycleSafety:
    """Kidney dose and half-life (:func:`kidney_dose_and_half_life`) and the marrow dose of the cycle."""
    try:
        kidney_dose, kidney_teff = kidney_dose_and_half_life(regions, rows, primary, estimates,
                                                             options.limits_method)
    except ValueError as error:
        raise ValueError(f"cycle {cycle.cycle}: {error}") from error
    marrow = [region for region in regions.regions if region.role == "marrow"]
    marrow_method = "voxel_s_value" if voxel_dose else "local_deposition"
    marrow_dose = _primary_dose(rows, primary, marrow[0].name, marrow_method) if marrow else None
    return CycleSafety(cycle.activity_mbq / 1000.0, kidney_dose, kidney_teff, marrow_dose,
                       marrow_method if marrow else None)


def tac_rows(regions: CycleRegions, curves: RegionTimeActivity, samples: int = 61) -> list[dict]:
    """Time-activity rows: times (h) and activities (MBq) of the measured points and fitted curves.

    Each fitted curve is sampled at ``samples`` points from 0 to 1.5 x the last scan time.
    """
    rows = []
    times = curves.times_h
    curve_t = np.linspace(0.0, 1.5 * times[-1], samples)
    for r, region in enumerate(regions.regions):
        fit = curves.fits.get(region.name)
        model = fit.model if fit is not None else None
        for k, t in enumerate(times):
            rows.append(region.tags() | {"series": "measured", "time_h": float(t),
                                         "activity_mbq": float(curves.activity_mbq[r, k]),
                                         "uncorrected_activity_mbq": float(curves.uncorrected_mbq[r, k]),
                                         "fit_model": model})
        if fit is not None:
            for t, value in zip(curve_t, fit.curve(curve_t), strict=True):
                rows.append(region.tags() | {"series": "fit", "time_h": float(t),
                                             "activity_mbq": float(value), "uncorrected_activity_mbq": None,
                                             "fit_model": model})
    return rows


def _scans_on_reference_grid(patient_id: str, cycle: CycleData, registration: str
                             ) -> tuple[list[sitk.Image], list[dict]]:
    """Every scan on the first scan's SPECT grid, in the frame of the cycle's CT; registration rows."""
    grid = cycle.time_points[0].spect.image
    images, rows = [], []
    for point in cycle.time_points:
        row = {"patient_id": patient_id, "cycle": cycle.cycle, "time_h": point.hours_post_injection,
               "spect": point.source or point.spect.source, "registration": "shared_ct"}
        transform = None
        if point.ct is not None and registration == "none":
            dice = _body_dice(cycle.ct, point.ct)
            row |= {"registration": "none", "body_dice_before": dice, "body_dice_after": dice}
        elif point.ct is not None:
            result = register_rigid(cycle.ct, point.ct)
            if registration == "deformable":
                result = register_deformable(cycle.ct, point.ct, initial_transform=result.transform)
            transform = result.transform
            row |= {"registration": registration, "metric_mattes_mi": result.metric_mattes_mi,
                    "metric_mattes_mi_before": result.metric_mattes_mi_before,
                    "body_dice_before": result.body_dice_before, "body_dice_after": result.body_dice_after}
            log.info("cycle %d, %g h: %s registration, body Dice %.3f -> %.3f", cycle.cycle,
                     point.hours_post_injection, registration, result.body_dice_before,
                     result.body_dice_after)
        image = point.spect.image
        if transform is not None or not same_grid(image, grid):
            image = resample_to(image, grid, transform, interpolator="linear", default_value=0.0)
        images.append(sitk.Cast(image, sitk.sitkFloat32))
        rows.append({column: row.get(column) for column in REGISTRATION_COLUMNS})
    return images, rows


def _body_dice(fixed_ct: sitk.Image, moving_ct: sitk.Image) -> float:
    """Dice of the two CTs' body outlines on the fixed grid, without any transform."""
    fixed = sitk.GetArrayViewFromImage(body_mask(fixed_ct)) > 0
    moving_mask = resample_to(body_mask(moving_ct), fixed_ct, interpolator="nearest")
    moving = sitk.GetArrayViewFromImage(moving_mask) > 0
    return 2.0 * np.count_nonzero(fixed & moving) / (np.count_nonzero(fixed) + np.count_nonzero(moving))


def _masked(dose: sitk.Image, inside: np.ndarray) -> sitk.Image:
    """Dose outside the body set to 0: there it is SPECT blur in air divided by the density of air."""
    return image_on_grid(np.where(inside, sitk.GetArrayViewFromImage(dose), 0.0).astype(np.float32), dose)


def _scaled(progress: ProgressCallback, start: float, stop: float) -> ProgressCallback:
    return lambda fraction, message: progress(start + (stop - start) * fraction, message)
