"""Seeded synthetic PRRT patient with a known truth: the project's test, demo and sample data.

:func:`make_patient` builds a neuroendocrine-tumour patient with liver metastases in
both lobes treated with four cycles of 177Lu-DOTATATE into one hepatic artery (the IA
lobe; the other lobe is the IV arm): an abdominal CT (HU) and a tagged segmentation per
visit, quantitative SPECT (Bq/mL) at several hours after each administration, and the
truth (per-region concentrations, activities, time-integrated activities, volumes,
lesion T/N and diameters) in closed form. :func:`luprrt.phantom.write_patient` writes it as DICOM,
seg.nrrd, NRRD truth maps and JSON.

Model choices worth knowing:

* One frame of reference for every visit (perfect repositioning); lesions keep their
  centre and change size between visits by a known exponential rule.
* Activity of earlier cycles is not carried over: after 11 weeks it is
  exp(-ln2 1848 h / 159.5 h) = 3e-4 of the administration.
* The truth concentration is piecewise constant: uniform per organ and lesion;
  the remainder of the body has one time course scaled per tissue (fat, lung, bone).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

import numpy as np
import SimpleITK as sitk

from ..provenance import ProgressCallback, no_progress
from ..segments import Segmentation, SegmentTags
from . import anatomy as pa
from . import clinical as pc
from . import kinetics as pk
from .attenuation import tissue_mu_per_cm
from .blood_sampling import blood_sample_rows, marrow_dose_truth
from .imaging import BASELINE_MAPS, blurred_map, counts_per_bq_per_ml, simulate_spect, spect_grid
from .spect_camera import SpectProtocol
from .truth import (
    LESION_LABEL_OFFSET,
    ORGAN_REGIONS,
    REGION_LABEL,
    Administration,
    CycleTruth,
    ImagingSession,
    LesionTruth,
    PatientTruth,
    SpectAcquisition,
    time_point_truth,
    with_unions,
)

FIELD_OF_VIEW_MM = (300.0, 240.0, 200.0)  # x (right-left), y (anterior-posterior), z (inferior-superior)
DEFAULT_LESION_DIAMETERS_MM = {"right": (46.0, 32.0, 21.0, 13.0, 9.0), "left": (32.0, 21.0, 14.0, 10.0)}
WEEKS_BETWEEN_CYCLES = 11.0
# Lesion size change driven by T/N and baseline imaging ("uptake") or by cumulative absorbed dose ("dose").
RESPONSE_MODELS = ("uptake", "dose")
# Follow-up PET and DW-MRI after each cycle: this many weeks after its administration.
AFTER_CYCLE_IMAGING_WEEKS = 10.0


@dataclass
class SyntheticPatient:
    """A synthetic patient: visits (CT, segmentation, SPECTs), administrations and the truth."""

    patient_id: str
    seed: int
    ia_side: str
    administrations: list[Administration]
    sessions: list[ImagingSession]
    truth: PatientTruth
    parameters: dict
    characteristics: dict = field(default_factory=dict)
    labs: list[dict] = field(default_factory=list)
    organ_doses: list = field(default_factory=list)  # phantom.clinical.OrganDoseTruth per cycle
    blood_samples: dict = field(default_factory=dict)  # cycle -> rows of phantom.blood_sampling.blood_sample_rows
    marrow_doses: list = field(default_factory=list)  # phantom.blood_sampling.marrow_dose_truth per cycle

    @property
    def iv_side(self) -> str:
        """The lobe side treated by the intravenous (second-pass) route."""
        return "left" if self.ia_side == "right" else "right"

    @property
    def ct(self) -> sitk.Image:
        """CT of the first cycle (baseline anatomy)."""
        return self.sessions[0].ct

    @property
    def segmentation(self) -> Segmentation:
        """The first visit's tagged segmentation (on its CT grid)."""
        return self.sessions[0].segmentation

    def session(self, name: str) -> ImagingSession:
        """The imaging session called ``name`` (e.g. ``"cycle1"``, ``"baseline"``)."""
        for s in self.sessions:
            if s.name == name:
                return s
        raise KeyError(f"no session {name!r}; have {[s.name for s in self.sessions]}")

    def spect(self, cycle: int, hours: float) -> SpectAcquisition:
        """The SPECT acquisition of ``cycle`` at ``hours`` after the administration."""
        for acq in self.session(f"cycle{cycle}").spect:
            if np.isclose(acq.hours_post_injection, hours):
                return acq
        raise KeyError(f"cycle {cycle} has no SPECT at {hours} h")

    def _region_map(self, session: ImagingSession, lut: np.ndarray) -> sitk.Image:
        labels = sitk.GetArrayViewFromImage(session.region_labels)
        scale = pk.TISSUE_ACTIVITY_SCALE[sitk.GetArrayViewFromImage(session.tissue)]
        image = sitk.GetImageFromArray((lut[labels] * scale).astype(np.float32))
        image.CopyInformation(session.ct)
        return image

    def _kinetics_lut(self, cycle: int, value) -> np.ndarray:
        truth = self.truth.cycle(cycle)
        names = {v: k for k, v in self.truth.region_labels.items()}
        lut = np.zeros(max(self.truth.region_labels) + 1)
        for region, curve in truth.kinetics.items():
            lut[names[region]] = value(curve)
        return lut

    def truth_concentration(self, cycle: int, hours: float) -> sitk.Image:
        """True activity concentration (Bq/mL, CT grid) at ``hours`` after the administration of ``cycle``."""
        lut = self._kinetics_lut(cycle, lambda c: float(c.concentration_bq_per_ml(hours)))
        return self._region_map(self.session(f"cycle{cycle}"), lut)

    def tia_map(self, cycle: int) -> sitk.Image:
        """True time-integrated activity concentration (MBq h/mL, CT grid) of ``cycle`` (0 to infinity)."""
        lut = self._kinetics_lut(cycle, lambda c: c.time_integral_bq_h_per_ml() * 1e-6)
        return self._region_map(self.session(f"cycle{cycle}"), lut)

    def _baseline_map(self, kind: str, fwhm_mm: float, after_cycle: int | None = None) -> sitk.Image:
        """SUV (PET) or ADC map: organ values, lesion truth, blur; at baseline or after a cycle."""
        organ_values = BASELINE_MAPS[kind]
        lut = np.zeros(max(self.truth.region_labels) + 1)
        for label, name in ORGAN_REGIONS.items():
            lut[label] = organ_values[name.split("_")[0]]
        attr = {"FDG": "fdg_suv", "GA68": "ga68_suv", "ADC": "adc_mm2_per_s"}[kind]
        for lesion in self.truth.lesions:
            lut[lesion.label_value] = (getattr(lesion.biology, attr) if after_cycle is None
                                       else lesion.after_cycle_imaging[after_cycle][attr])
        session = self.sessions[0] if after_cycle is None else self.after_cycle_session(after_cycle)
        # Tracer uptake is lower in fat, lung and bone; diffusion is not scaled.
        scale = np.ones_like(pk.TISSUE_ACTIVITY_SCALE) if kind == "ADC" else pk.TISSUE_ACTIVITY_SCALE
        values = (lut[sitk.GetArrayViewFromImage(session.region_labels)]
                  * scale[sitk.GetArrayViewFromImage(session.tissue)])
        return blurred_map(values, session.ct, fwhm_mm)

    def pet_image(self, kind: str, fwhm_mm: float = 6.0) -> sitk.Image:
        """Baseline PET as SUV on the CT grid: ``kind`` "FDG" or "GA68" (68Ga-DOTATATE), Gaussian blur."""
        if kind.upper() not in ("FDG", "GA68"):
            raise ValueError(f"unknown PET tracer {kind!r}; expected 'FDG' or 'GA68'")
        return self._baseline_map(kind.upper(), fwhm_mm)

    def adc_image(self, fwhm_mm: float = 3.0) -> sitk.Image:
        """Baseline diffusion-weighted MRI apparent diffusion coefficient map (mm2/s) on the CT grid."""
        return self._baseline_map("ADC", fwhm_mm)

    def after_cycle_session(self, cycle: int) -> ImagingSession:
        """The visit whose anatomy the imaging after ``cycle`` shows: the next cycle's, else the first follow-up."""
        later = [s for s in self.sessions if s.weeks_since_first_cycle > WEEKS_BETWEEN_CYCLES * (cycle - 1)]
        if not later:
            raise KeyError(f"no visit after cycle {cycle} to image")
        return later[0]

    def after_cycle_pet_image(self, kind: str, cycle: int, fwhm_mm: float = 6.0) -> sitk.Image:
        """PET (SUV) ``kind`` "FDG" or "GA68" acquired after ``cycle`` (lesion values of that time)."""
        if kind.upper() not in ("FDG", "GA68"):
            raise ValueError(f"unknown PET tracer {kind!r}; expected 'FDG' or 'GA68'")
        return self._baseline_map(kind.upper(), fwhm_mm, after_cycle=cycle)

    def after_cycle_adc_image(self, cycle: int, fwhm_mm: float = 3.0) -> sitk.Image:
        """ADC map (mm2/s) of the DW-MRI acquired after ``cycle``."""
        return self._baseline_map("ADC", fwhm_mm, after_cycle=cycle)


def _rng(seed: int, *keys) -> np.random.Generator:
    """An independent, reproducible stream per purpose (so one knob does not shift the others)."""
    return np.random.default_rng([seed, *(zlib.crc32(str(k).encode()) for k in keys)])


def _ct_reference(spacing_mm) -> sitk.Image:
    spacing = np.asarray(spacing_mm, dtype=float)
    if spacing.shape != (3,) or np.any(spacing <= 0):
        raise ValueError(f"CT spacing must be three positive values in mm, got {spacing_mm}")
    size = np.round(np.asarray(FIELD_OF_VIEW_MM) / spacing).astype(int)
    image = sitk.Image([int(n) for n in size], sitk.sitkFloat32)
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(v) for v in -(size - 1) * spacing / 2])
    return image


def _grid_mm(reference: sitk.Image):
    """Voxel-centre coordinates (x, y, z) in mm as broadcastable (z, y, x) arrays."""
    o, s, n = reference.GetOrigin(), reference.GetSpacing(), reference.GetSize()
    axes = [o[a] + s[a] * np.arange(n[a]) for a in range(3)]
    return axes[0][None, None, :], axes[1][None, :, None], axes[2][:, None, None]


def _image(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    return image


def _validate(ia_side, ia_tn_factor, n_cycles, hours, diameters, activity_mbq, followup_weeks) -> None:
    if ia_side not in ("right", "left"):
        raise ValueError(f"ia_side must be 'right' or 'left', got {ia_side!r}")
    if not ia_tn_factor > 0:
        raise ValueError(f"ia_tn_factor must be positive, got {ia_tn_factor}")
    if not 1 <= n_cycles <= 8:
        raise ValueError(f"n_cycles must be between 1 and 8, got {n_cycles}")
    if not hours or any(h <= 0 for h in hours) or any(b <= a for a, b in pairwise(hours)):
        raise ValueError(f"hours_post_injection must be positive and increasing, got {tuple(hours)}")
    if activity_mbq <= 0:
        raise ValueError(f"activity_mbq must be positive, got {activity_mbq}")
    if any(w <= 0 for w in followup_weeks):
        raise ValueError(f"followup_weeks must be positive (weeks after the last cycle), "
                         f"got {tuple(followup_weeks)}")
    if set(diameters) - {"right", "left"}:
        raise ValueError(f"lesion_diameters_mm keys must be 'right'/'left', got {sorted(diameters)}")
    for side, values in diameters.items():
        for d in values:
            if not 5.0 <= d <= 60.0:
                raise ValueError(f"lesion diameter {d} mm in the {side} lobe is outside 5-60 mm")


def make_patient(seed: int = 0, *, ia_side: str = "right", ia_tn_factor: float = 1.3, n_cycles: int = 4,
                 hours_post_injection: Sequence[float] = (4.0, 24.0, 96.0, 168.0),
                 activity_mbq: float = 7400.0, small: bool = False,
                 ct_spacing_mm: Sequence[float] | None = None, spect_spacing_mm: float = 4.42,
                 spect_fwhm_mm: float = 12.0, noise: bool = True, spect_counts_per_mbq: float = 1.0e4,
                 ct_noise_hu: float = 12.0, median_tn: float = 12.0,
                 lesion_diameters_mm: Mapping[str, Sequence[float]] | None = None,
                 lesion_shape: str = "ellipsoid", followup_weeks: Sequence[float] = (12.0, 26.0),
                 spect_model: str = "gaussian", osem_protocol: SpectProtocol | None = None,
                 osem_calibration_cps_per_mbq: float | None = None,
                 response_model: str = "uptake",
                 progress: ProgressCallback | None = None) -> SyntheticPatient:
    """Build a seeded synthetic 177Lu-DOTATATE PRRT patient with a known truth.

    Parameters
    ----------
    seed : int
        Same seed, same patient (anatomy, lesions, kinetics, noise), on any grid.
    ia_side : {"right", "left"}
        Lobe whose hepatic artery receives every administration (the IA arm).
    ia_tn_factor : float
        Lesion T/N in the IA lobe relative to the IV lobe, in expectation (the study effect).
    n_cycles, hours_post_injection, activity_mbq :
        Cycles 11 weeks apart of ``activity_mbq`` (+-1 % seeded), SPECT at these hours after each.
    small : bool
        4 x 4 x 5 mm CT voxels (a test patient in a few seconds) instead of 2 x 2 x 2.5 mm.
    ct_spacing_mm : (x, y, z) mm, optional
        Overrides the CT voxel size; the field of view is 300 x 240 x 200 mm.
    spect_spacing_mm, spect_fwhm_mm : float
        SPECT voxel size and resolution (FWHM), mm.
    noise : bool
        Poisson noise in SPECT and Gaussian noise (``ct_noise_hu``) in CT; False gives
        the expected images exactly.
    spect_counts_per_mbq : float
        Detected counts per MBq over the acquisition: SPECT sensitivity ~5.7 cps/MBq for the
        208 keV peak (EJNMMI Res 2018, doi:10.1186/s13550-018-0459-4) x a ~30 min acquisition.
    median_tn : float
        Median lesion T/N at 24 h after cycle 1 in the IV lobe.
    lesion_diameters_mm : {"right": [...], "left": [...]}, optional
        Longest axial diameters (mm) at cycle 1 of the lesions of each lobe.
    lesion_shape : {"ellipsoid", "sphere"}
    followup_weeks : weeks after the last cycle of the follow-up CTs.
    spect_model : {"gaussian", "osem"}
        "gaussian": the truth averaged into SPECT voxels, a Gaussian blur of ``spect_fwhm_mm``
        and Poisson noise (fast). "osem": a simulated acquisition reconstructed by OSEM with
        attenuation, collimator response and scatter (:mod:`luprrt.phantom.osem`; needs the
        ``sim`` extra, minutes per scan), calibrated to Bq/mL by a simulated cylinder;
        ``spect_spacing_mm`` and ``spect_fwhm_mm`` then come from ``osem_protocol``.
    osem_protocol : SpectProtocol, optional
        Camera, acquisition and reconstruction of the "osem" model (default: SpectProtocol()).
    osem_calibration_cps_per_mbq : float, optional
        Calibration factor of the "osem" model; default: from a simulated uniform cylinder.
    response_model : {"uptake", "dose"}
        What drives each lesion's size change: its T/N and baseline imaging
        (:func:`~luprrt.phantom.kinetics.growth_rate_per_week`, the default), or its true
        cumulative absorbed dose (:func:`~luprrt.phantom.kinetics.growth_rate_from_dose_per_week`:
        a known dose-response to check a response analysis against).
    progress : callable(fraction, message), optional

    The patient also carries synthetic baseline characteristics and laboratory values whose
    toxicity follows its true organ doses (:mod:`luprrt.phantom.clinical`), and lesion
    FDG / 68Ga SUV and ADC after every cycle that change with the cumulative lesion dose
    (:data:`~luprrt.phantom.kinetics.AFTER_CYCLE_IMAGING_MODEL`). All of these draw from their own
    seeded streams: they leave the images and the rest of the truth unchanged.
    """
    progress = progress or no_progress
    hours = tuple(float(h) for h in hours_post_injection)
    diameters = dict(DEFAULT_LESION_DIAMETERS_MM if lesion_diameters_mm is None else lesion_diameters_mm)
    _validate(ia_side, ia_tn_factor, n_cycles, hours, diameters, activity_mbq, followup_weeks)
    if spect_model not in ("gaussian", "osem"):
        raise ValueError(f"spect_model must be 'gaussian' or 'osem', got {spect_model!r}")
    if spect_model == "osem" and not noise:
        raise ValueError("spect_model='osem' simulates counting statistics; it has no noise-free mode "
                         "(use spect_model='gaussian' with noise=False)")
    if response_model not in RESPONSE_MODELS:
        raise ValueError(f"response_model must be one of {RESPONSE_MODELS}, got {response_model!r}")
    spacing = ct_spacing_mm if ct_spacing_mm is not None else ((4.0, 4.0, 5.0) if small else (2.0, 2.0, 2.5))
    reference = _ct_reference(spacing)
    voxel_ml = float(np.prod(reference.GetSpacing())) / 1000.0
    progress(0.0, "anatomy")

    anatomy = pa.draw_anatomy(_rng(seed, "anatomy"))
    sides = [side for side in ("right", "left") for _ in diameters.get(side, ())]
    ids = [f"L{i + 1:02d}" for i in range(len(sides))]
    routes = ["IA" if side == ia_side else "IV" for side in sides]
    shape_rng = _rng(seed, "lesion shape")
    semi_axes = [pa.lesion_semi_axes_mm(d, lesion_shape, shape_rng)
                 for side in ("right", "left") for d in diameters.get(side, ())]
    biology = pk.draw_lesion_biology(_rng(seed, "lesion biology"), routes, ia_tn_factor, median_tn)
    # Schedule: first administration on a seeded day of 2024, then every 11 weeks.
    sched = _rng(seed, "schedule")
    first = datetime(2024, 1, 8, 9, 0) + timedelta(days=int(sched.integers(0, 365)),
                                                   minutes=int(sched.integers(0, 12)) * 15)
    activities = activity_mbq * (1.0 + 0.01 * sched.standard_normal(n_cycles))
    administrations = [Administration(k, first + timedelta(weeks=WEEKS_BETWEEN_CYCLES * (k - 1)),
                                      float(round(activities[k - 1], 1)), "IA", ia_side)
                       for k in range(1, n_cycles + 1)]
    organ_curves = _organ_curves(seed, administrations)
    lesion_doses = [[pc.curve_dose_gy(_lesion_curve(b, adm.cycle, curves["nontumour"], median_tn))
                     for adm, curves in zip(administrations, organ_curves, strict=True)] for b in biology]
    if response_model == "dose":
        rate_noise = _rng(seed, "dose response noise").normal(0.0, pk.DOSE_RESPONSE_MODEL["noise_sd_per_week"],
                                                         len(biology))
        biology = [dataclasses.replace(b, growth_rate_per_week=pk.growth_rate_from_dose_per_week(
            b.fdg_suv, sum(doses), float(e))) for b, doses, e in zip(biology, lesion_doses, rate_noise, strict=True)]
    session_plan = [(f"cycle{k}", "cycle", k, WEEKS_BETWEEN_CYCLES * (k - 1)) for k in range(1, n_cycles + 1)]
    session_plan += [(f"followup{j}", "followup", None, WEEKS_BETWEEN_CYCLES * (n_cycles - 1) + w)
                     for j, w in enumerate(followup_weeks, start=1)]
    scales = np.exp(np.outer([b.growth_rate_per_week for b in biology], [p[3] for p in session_plan]))
    placements = pa.place_lesions(anatomy, [(ids[i], sides[i], semi_axes[i], float(scales[i].max()))
                                            for i in range(len(ids))], _rng(seed, "lesion placement"))
    hu_rng = _rng(seed, "lesion hu")
    lesion_hu = [float(hu_rng.uniform(75.0, 95.0) if hu_rng.random() < 0.25 else hu_rng.uniform(25.0, 45.0))
                 for _ in ids]

    x, y, z = _grid_mm(reference)
    tissue0 = pa.tissue_map(anatomy, x, y, z)
    liver = tissue0 == pa.LIVER
    left = np.broadcast_to(anatomy.cantlie.signed_distance_mm(x, y, z) > 0, liver.shape)
    couinaud = pa.couinaud_map(anatomy, x, y, z, liver)
    xs = np.broadcast_to(x, liver.shape)
    region0 = np.zeros(tissue0.shape, dtype=np.uint8)
    for region, mask in (("remainder", tissue0 != pa.AIR), ("nontumour_right", liver & ~left),
                         ("nontumour_left", liver & left),
                         ("kidney_right", (tissue0 == pa.KIDNEY) & (xs < 0)),  # LPS: patient right is -x
                         ("kidney_left", (tissue0 == pa.KIDNEY) & (xs > 0)), ("spleen", tissue0 == pa.SPLEEN),
                         ("marrow", tissue0 == pa.MARROW), ("blood", tissue0 == pa.BLOOD)):
        region0[mask] = REGION_LABEL[region]
    region_names = dict(ORGAN_REGIONS) | {LESION_LABEL_OFFSET + i: lid for i, lid in enumerate(ids)}


    lesions = [LesionTruth(ids[i], LESION_LABEL_OFFSET + i, sides[i], routes[i], placements[i].centre_mm,
                           tuple(semi_axes[i]), placements[i].rotation_about_z_deg, lesion_hu[i], biology[i])
               for i in range(len(ids))]
    sessions, volumes = [], {}
    for s_index, (name, kind, cycle, weeks) in enumerate(session_plan):
        progress(0.05 + 0.35 * s_index / len(session_plan), f"anatomy of {name}")
        tissue, regions = tissue0.copy(), region0.copy()
        ct = pa.TISSUE_HU[tissue]
        for i, lesion in enumerate(lesions):
            ell = placements[i].ellipsoid(float(scales[i, s_index]))
            index, inside = pa.ellipsoid_voxels(ell, reference.GetOrigin(), reference.GetSpacing(),
                                                reference.GetSize(), x, y, z)
            tissue[index][inside] = pa.LESION
            regions[index][inside] = lesion.label_value
            ct[index][inside] = lesion.hu
            lesion.diameter_mm[name] = 2.0 * max(ell.semi_axes_mm[:2])
            lesion.analytic_volume_ml[name] = ell.volume_ml
        if noise and ct_noise_hu > 0:
            ct = ct + _rng(seed, "ct noise", name).normal(0.0, ct_noise_hu, ct.shape).astype(np.float32)
        counts = np.bincount(regions.ravel(), minlength=max(region_names) + 1) * voxel_ml
        volumes[name] = with_unions({n: float(counts[label]) for label, n in region_names.items()}, lesions)
        date = administrations[cycle - 1].datetime if cycle else (
            administrations[-1].datetime + timedelta(weeks=weeks - WEEKS_BETWEEN_CYCLES * (n_cycles - 1)))
        sessions.append(ImagingSession(
            name, kind, cycle, date, weeks, _image(ct.astype(np.float32), reference),
            _segmentation(reference, tissue, regions, liver, left, lesions, ia_side),
            _image(tissue, reference), _image(regions, reference)))

    cycles = _cycle_truths(organ_curves, administrations, sessions, volumes, lesions, region_names, hours,
                           median_tn, voxel_ml)
    _after_cycle_imaging(_rng(seed, "after-cycle imaging"), lesions, lesion_doses)
    truth = PatientTruth(
        cantlie_plane=anatomy.cantlie, couinaud=_image(couinaud, reference), region_labels=region_names,
        lesions=lesions, volumes_ml=volumes, cycles=cycles, median_tn=median_tn, ia_tn_factor=ia_tn_factor,
        baseline_imaging={"ga68_pet": first - timedelta(days=21), "fdg_pet": first - timedelta(days=14),
                          "mri": first - timedelta(days=10)})
    patient = SyntheticPatient(
        patient_id=f"LUPRRT-SYN-{seed:04d}", seed=seed, ia_side=ia_side, administrations=administrations,
        sessions=sessions, truth=truth,
        parameters={"seed": seed, "ia_side": ia_side, "ia_tn_factor": ia_tn_factor, "n_cycles": n_cycles,
                    "hours_post_injection": list(hours), "activity_mbq": activity_mbq,
                    "ct_spacing_mm": list(reference.GetSpacing()), "spect_spacing_mm": spect_spacing_mm,
                    "spect_fwhm_mm": spect_fwhm_mm, "noise": noise,
                    "spect_counts_per_mbq": spect_counts_per_mbq,
                    "ct_noise_hu": ct_noise_hu, "median_tn": median_tn,
                    "lesion_diameters_mm": {k: list(v) for k, v in diameters.items()},
                    "lesion_shape": lesion_shape, "followup_weeks": list(followup_weeks),
                    "response_model": response_model}
        | ({"spect_model": "osem", "osem_protocol": (osem_protocol or SpectProtocol()).as_dict()}
           if spect_model == "osem" else {}))
    patient.blood_samples = {c.cycle: blood_sample_rows(c, _rng(seed, "blood samples", c.cycle) if noise else None)
                             for c in cycles}
    patient.marrow_doses = [marrow_dose_truth(c) for c in cycles]
    _add_clinical_data(patient, seed, administrations, cycles, ia_side)

    if spect_model == "osem":
        _osem_spects(patient, seed, hours, osem_protocol or SpectProtocol(), osem_calibration_cps_per_mbq,
                     progress)
        progress(1.0, "done")
        return patient
    spect_ref = spect_grid(reference, spect_spacing_mm, spect_fwhm_mm)
    gain = counts_per_bq_per_ml(spect_ref, spect_counts_per_mbq)
    for n, (adm, hour) in enumerate((a, h) for a in administrations for h in hours):
        progress(0.4 + 0.6 * n / (len(administrations) * len(hours)),
                 f"SPECT cycle {adm.cycle} at {hour:g} h")
        rng = _rng(seed, "spect noise", adm.cycle, hour) if noise else None
        image = simulate_spect(patient.truth_concentration(adm.cycle, hour), spect_ref, fwhm_mm=spect_fwhm_mm,
                               counts_per_mbq=spect_counts_per_mbq, rng=rng)
        patient.session(f"cycle{adm.cycle}").spect.append(
            SpectAcquisition(adm.cycle, hour, adm.datetime + timedelta(hours=hour), image, gain))
    progress(1.0, "done")
    return patient


def _osem_spects(patient: SyntheticPatient, seed: int, hours, protocol: SpectProtocol,
                 calibration_cps_per_mbq: float | None, progress) -> None:
    """Every cycle's SPECTs by simulated acquisition + OSEM (luprrt.phantom.osem), calibrated to Bq/mL."""
    from . import osem

    grids = osem.simulation_grids(FIELD_OF_VIEW_MM, protocol.recon_voxel_mm, protocol.projector_subdivision)
    if calibration_cps_per_mbq is None:
        progress(0.4, "calibration cylinder")
        calibration_cps_per_mbq, _ = osem.simulate_cylinder_calibration(grids, protocol, _rng(seed, "osem cylinder"))
    duration = protocol.acquisition_duration_s
    voxel_ml = float(np.prod(grids.recon.GetSpacing())) / 1000.0
    gain = calibration_cps_per_mbq * duration * voxel_ml * 1e-6  # counts per voxel per Bq/mL
    scans = [(a, h) for a in patient.administrations for h in hours]
    patient.parameters["osem_calibration_cps_per_mbq"] = calibration_cps_per_mbq
    patient.parameters["osem_scans"] = []
    for n, (adm, hour) in enumerate(scans):
        progress(0.45 + 0.55 * n / len(scans), f"OSEM SPECT cycle {adm.cycle} at {hour:g} h")
        scan = osem_patient_scan(patient, adm.cycle, hour, protocol)
        image = osem.counts_to_bq_per_ml(scan.counts, calibration_cps_per_mbq, duration)
        patient.parameters["osem_scans"].append(osem_scan_summary(scan) | {"cycle": adm.cycle,
                                                                          "hours_post_injection": hour})
        patient.session(f"cycle{adm.cycle}").spect.append(
            SpectAcquisition(adm.cycle, hour, adm.datetime + timedelta(hours=hour), image, gain))


def osem_patient_scan(patient: SyntheticPatient, cycle: int, hours: float, protocol: SpectProtocol):
    """One simulated acquisition + OSEM reconstruction (counts) of ``patient`` (:func:`luprrt.phantom.osem`).

    The truth: the patient's activity concentration and its tissues' attenuation on the CT grid;
    the reconstruction's attenuation: the visit's CT by the bilinear conversion. The noise comes
    from the patient's own seeded stream for this cycle and hour, so a scan is the same whether
    made alone or within ``make_patient(spect_model="osem")``.
    """
    from . import osem

    grids = osem.simulation_grids(FIELD_OF_VIEW_MM, protocol.recon_voxel_mm, protocol.projector_subdivision)
    session = patient.session(f"cycle{cycle}")
    mu_lut = tissue_mu_per_cm(protocol.energy_kev)
    mu_true = sitk.GetImageFromArray(mu_lut[sitk.GetArrayViewFromImage(session.tissue)].astype(np.float32))
    mu_true.CopyInformation(session.ct)
    return osem.simulate_osem_scan(patient.truth_concentration(cycle, hours), mu_true,
                                   osem.recon_mu_from_ct(session.ct, grids.recon, protocol.energy_kev), grids,
                                   protocol, _rng(patient.seed, "osem spect noise", cycle, hours))


def osem_scan_summary(scan) -> dict:
    """Counts, scatter fraction and orbit of a simulated acquisition, as plain JSON."""
    acquisition = scan.acquisition
    return {"total_counts": acquisition.total_counts, "scatter_fraction": acquisition.scatter_fraction,
            "lower_window_counts": int(acquisition.lower_window.sum()),
            "orbit_radius_mm": [float(acquisition.radii_mm.min()), float(acquisition.radii_mm.max())]}


def _segmentation(reference, tissue, regions, liver, left, lesions, ia_side) -> Segmentation:
    """Tagged truth segmentation of one visit (lesions overlap lobes: Segmentation layers them)."""
    seg = Segmentation.empty_like(reference)
    seg.add_segment(tissue != pa.AIR, SegmentTags("body"))
    seg.add_segment(liver, SegmentTags("liver"))
    for side, mask in (("right", liver & ~left), ("left", liver & left)):
        seg.add_segment(mask, SegmentTags("lobe", side=side, route="IA" if side == ia_side else "IV"))
    for lesion in lesions:
        mask = regions == lesion.label_value
        if mask.any():  # a lesion shrunk below one voxel has no segment at that visit
            seg.add_segment(mask, SegmentTags("lesion", side=lesion.side, route=lesion.route,
                                              lesion_id=lesion.lesion_id))
    for region, tags in (("kidney_right", SegmentTags("kidney", side="right")),
                         ("kidney_left", SegmentTags("kidney", side="left")),
                         ("spleen", SegmentTags("spleen")), ("marrow", SegmentTags("marrow")),
                         ("blood", SegmentTags("blood"))):
        seg.add_segment(regions == REGION_LABEL[region], tags)
    return seg


def _organ_curves(seed, administrations) -> list[dict]:
    """Organ concentration curves per cycle: population model x seeded patient and cycle factors."""
    patient_rng = _rng(seed, "patient kinetics")
    organs = ("nontumour", "kidney", "spleen", "blood", "remainder")
    dose_factor = dict(zip(organs, np.exp(0.2 * patient_rng.standard_normal(len(organs))), strict=True))
    half_life_factor = dict(zip(organs, np.exp(0.1 * patient_rng.standard_normal(len(organs))), strict=True))
    curves = []
    for adm in administrations:
        cycle_rng = _rng(seed, "cycle kinetics", adm.cycle)
        per_cycle = dict(zip(organs, np.exp(0.07 * cycle_rng.standard_normal(len(organs))), strict=True))
        curves.append({o: pk.organ_kinetics(pk.ORGAN_MODELS[o], adm.activity_mbq, dose_factor[o] * per_cycle[o],
                                            half_life_factor[o]) for o in organs})
    return curves


def _lesion_curve(biology, cycle, nontumour, median_tn):
    return pk.lesion_kinetics(biology.tn_at_24h(cycle, median_tn), nontumour, biology.uptake_half_life_h,
                              biology.effective_half_life_h)


def _after_cycle_imaging(rng, lesions, lesion_doses) -> None:
    """Lesion FDG / 68Ga SUV and ADC after each cycle, from the cumulative true dose so far."""
    m = pk.AFTER_CYCLE_IMAGING_MODEL
    for lesion, doses in zip(lesions, lesion_doses, strict=True):
        b = lesion.biology
        for cycle in range(1, len(doses) + 1):
            per_100_gy = sum(doses[:cycle]) / 100.0
            noise = rng.normal(0.0, m["noise_sd_log"], 3)
            lesion.cumulative_dose_gy[cycle] = float(sum(doses[:cycle]))
            lesion.after_cycle_imaging[cycle] = {
                "fdg_suv": float(b.fdg_suv * np.exp(m["fdg_log_per_100_gy"] * per_100_gy + noise[0])),
                "ga68_suv": float(b.ga68_suv * np.exp(m["ga68_log_per_100_gy"] * per_100_gy + noise[1])),
                "adc_mm2_per_s": float(b.adc_mm2_per_s * np.exp(m["adc_log_per_100_gy"] * per_100_gy + noise[2]))}


def _add_clinical_data(patient, seed, administrations, cycles, ia_side) -> None:
    """Characteristics, organ-dose truth and laboratory values (their own seeded streams)."""
    patient.characteristics = pc.draw_characteristics(_rng(seed, "characteristics"), patient.patient_id)
    patient.organ_doses = [pc.organ_dose_truth(c.cycle, c.kinetics, ia_side, marrow["dose_gy"])
                           for c, marrow in zip(cycles, patient.marrow_doses, strict=True)]
    followups = [s.datetime.date() for s in patient.sessions if s.kind == "followup"]
    patient.labs = pc.synthetic_labs(_rng(seed, "labs"), patient.patient_id, patient.characteristics,
                                     patient.organ_doses, [a.datetime.date() for a in administrations], followups)


def _cycle_truths(organ_curves, administrations, sessions, volumes, lesions, region_names, hours, median_tn,
                  voxel_ml):
    """Kinetics per region and cycle, and the truth tables they imply (closed form)."""
    cycles = []
    for adm, curve in zip(administrations, organ_curves, strict=True):
        kinetics = {"remainder": curve["remainder"], "nontumour_right": curve["nontumour"],
                    "nontumour_left": curve["nontumour"], "kidney_right": curve["kidney"],
                    "kidney_left": curve["kidney"], "spleen": curve["spleen"],
                    "marrow": curve["blood"], "blood": curve["blood"]}
        for lesion in lesions:
            tn = lesion.biology.tn_at_24h(adm.cycle, median_tn)
            lesion.tn_at_24h[adm.cycle] = tn
            biology = lesion.biology
            kinetics[lesion.lesion_id] = pk.lesion_kinetics(
                tn, curve["nontumour"], biology.uptake_half_life_h, biology.effective_half_life_h)
        session = next(s for s in sessions if s.cycle == adm.cycle)
        labels = sitk.GetArrayViewFromImage(session.region_labels).ravel()
        scale = pk.TISSUE_ACTIVITY_SCALE[sitk.GetArrayViewFromImage(session.tissue).ravel()]
        eff = np.bincount(labels, weights=scale, minlength=max(region_names) + 1) * voxel_ml
        eff_ml = {name: float(eff[label]) for label, name in region_names.items()}
        tia = {r: kinetics[r].time_integral_bq_h_per_ml() * eff_ml[r] * 1e-6 for r in kinetics}
        points = [time_point_truth(adm.cycle, h, kinetics, eff_ml, volumes[session.name], lesions)
                  for h in hours]
        cycles.append(CycleTruth(adm.cycle, session.name, adm, kinetics, eff_ml,
                                 with_unions(tia, lesions), points))
    return cycles
