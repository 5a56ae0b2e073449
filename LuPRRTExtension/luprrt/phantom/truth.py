"""Records of the synthetic patient: administrations, imaging sessions and the known truth.

Units are in every name: concentration Bq/mL, activity MBq, time-integrated activity
MBq h, volume mL, length mm, time h. :meth:`PatientTruth.to_json_dict` turns the scalar
truth into plain JSON with unit-suffixed keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import SimpleITK as sitk

from ..segments import Segmentation
from .anatomy import COUINAUD_LEFT, COUINAUD_NAMES, COUINAUD_RIGHT, Plane
from .kinetics import (
    AFTER_CYCLE_IMAGING_MODEL,
    DOSE_RESPONSE_MODEL,
    RESPONSE_MODEL,
    ExponentialSum,
    LesionBiology,
)

# Kinetic regions of the truth label map (label value -> name); lesions follow from
# LESION_LABEL_OFFSET in the order of their ids.
ORGAN_REGIONS = {1: "remainder", 2: "nontumour_right", 3: "nontumour_left", 4: "kidney_right",
                 5: "kidney_left", 6: "spleen", 7: "marrow", 8: "blood"}
REGION_LABEL = {name: label for label, name in ORGAN_REGIONS.items()}
LESION_LABEL_OFFSET = 20


@dataclass(frozen=True)
class Administration:
    """One 177Lu-DOTATATE administration: into the hepatic artery of ``side`` when route is IA."""

    cycle: int
    datetime: datetime
    activity_mbq: float
    route: str
    side: str

    @property
    def artery(self) -> str:
        """Where the activity was given: the treated hepatic artery, or a peripheral vein."""
        return f"{self.side} hepatic artery" if self.route == "IA" else "peripheral vein"

    def as_dict(self) -> dict:
        """The administration as a JSON-ready dict (activity in MBq, ISO date-time)."""
        return {"cycle": self.cycle, "datetime": self.datetime.isoformat(), "activity_mbq": self.activity_mbq,
                "route": self.route, "side": self.side, "artery": self.artery}


@dataclass
class SpectAcquisition:
    """One quantitative SPECT (Bq/mL at the acquisition time) after the administration of ``cycle``."""

    cycle: int
    hours_post_injection: float
    acquisition_datetime: datetime
    image: sitk.Image
    counts_per_bq_per_ml: float  # expected detected counts per voxel per Bq/mL (the noise level)


@dataclass
class ImagingSession:
    """One visit: a CT (HU) with its truth segmentation, and the SPECTs of a cycle (none at follow-up).

    ``tissue`` and ``region_labels`` are the truth maps on the CT grid: tissue classes
    (phantom_anatomy codes) and kinetic regions (:data:`ORGAN_REGIONS`, lesions from
    :data:`LESION_LABEL_OFFSET`).
    """

    name: str
    kind: str  # "cycle" or "followup"
    cycle: int | None
    datetime: datetime
    weeks_since_first_cycle: float
    ct: sitk.Image
    segmentation: Segmentation
    tissue: sitk.Image
    region_labels: sitk.Image
    spect: list[SpectAcquisition] = field(default_factory=list)


@dataclass
class LesionTruth:
    """A lesion's truth; its ``lesion_id`` is the same in every session."""

    lesion_id: str
    label_value: int
    side: str
    route: str
    centre_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]  # at the first session
    rotation_about_z_deg: float
    hu: float
    biology: LesionBiology
    diameter_mm: dict[str, float] = field(default_factory=dict)  # longest axial diameter per session
    analytic_volume_ml: dict[str, float] = field(default_factory=dict)  # 4/3 pi a b c per session
    tn_at_24h: dict[int, float] = field(default_factory=dict)  # per cycle
    cumulative_dose_gy: dict[int, float] = field(default_factory=dict)  # true mean dose up to each cycle
    after_cycle_imaging: dict[int, dict] = field(default_factory=dict)  # FDG/68Ga SUV, ADC after each cycle


@dataclass
class TimePointTruth:
    """Truth at one SPECT time point: per region mean concentration and activity, lesion T/N."""

    cycle: int
    hours_post_injection: float
    mean_bq_per_ml: dict[str, float]
    activity_mbq: dict[str, float]
    tn_ratio: dict[str, float]  # lesion mean / mean non-tumour liver of its lobe
    total_activity_mbq: float  # everything inside the CT field of view


@dataclass
class CycleTruth:
    """Truth of one cycle: kinetics per kinetic region, time-integrated activity, time points."""

    cycle: int
    session: str
    administration: Administration
    kinetics: dict[str, ExponentialSum]
    effective_volume_ml: dict[str, float]  # sum of voxel volume x tissue activity scale, per region
    tia_mbq_h: dict[str, float]
    time_points: list[TimePointTruth]

    def activity_mbq(self, region: str, hours):
        """Activity (MBq) of a kinetic region at ``hours`` after this cycle's administration."""
        return self.kinetics[region].concentration_bq_per_ml(hours) * self.effective_volume_ml[region] * 1e-6


@dataclass
class PatientTruth:
    """Everything known about the synthetic patient by construction."""

    cantlie_plane: Plane  # normal points into the left lobe
    couinaud: sitk.Image  # labels 1-8 on the CT grid (TotalSegmentator liver_segments numbering)
    region_labels: dict[int, str]
    lesions: list[LesionTruth]
    volumes_ml: dict[str, dict[str, float]]  # session name -> region -> voxel count x voxel volume
    cycles: list[CycleTruth]
    median_tn: float
    ia_tn_factor: float
    baseline_imaging: dict[str, datetime]

    def lesion(self, lesion_id: str) -> LesionTruth:
        """The truth of the lesion with tracking id ``lesion_id``."""
        for lesion in self.lesions:
            if lesion.lesion_id == lesion_id:
                return lesion
        raise KeyError(f"no lesion {lesion_id!r}; have {[le.lesion_id for le in self.lesions]}")

    def cycle(self, cycle: int) -> CycleTruth:
        """The truth of treatment cycle ``cycle`` (1-based)."""
        for c in self.cycles:
            if c.cycle == cycle:
                return c
        raise KeyError(f"no cycle {cycle}; have {[c.cycle for c in self.cycles]}")

    def time_point(self, cycle: int, hours: float) -> TimePointTruth:
        """The truth of ``cycle`` at ``hours`` after its administration."""
        for tp in self.cycle(cycle).time_points:
            if np.isclose(tp.hours_post_injection, hours):
                return tp
        raise KeyError(f"cycle {cycle} has no time point at {hours} h")

    def to_json_dict(self) -> dict:
        """Scalar truth as plain JSON (unit-suffixed keys)."""
        return {
            "cantlie_plane": {"point_mm": list(self.cantlie_plane.point_mm),
                              "normal_towards_left_lobe": list(self.cantlie_plane.normal)},
            "couinaud": {"segment_names": {str(k): v for k, v in COUINAUD_NAMES.items()},
                         "left_lobe_segments": list(COUINAUD_LEFT),
                         "right_lobe_segments": list(COUINAUD_RIGHT)},
            "region_labels": {str(k): v for k, v in self.region_labels.items()},
            "median_tn_ratio": self.median_tn,
            "ia_tn_factor": self.ia_tn_factor,
            "response_model": dict(RESPONSE_MODEL),
            "dose_response_model": dict(DOSE_RESPONSE_MODEL),
            "after_cycle_imaging_model": dict(AFTER_CYCLE_IMAGING_MODEL),
            "baseline_imaging_datetime": {k: v.isoformat() for k, v in self.baseline_imaging.items()},
            "volumes_ml": self.volumes_ml,
            "lesions": [_lesion_dict(le) for le in self.lesions],
            "cycles": [_cycle_dict(c) for c in self.cycles],
        }


def _lesion_dict(lesion: LesionTruth) -> dict:
    b = lesion.biology
    return {
        "lesion_id": lesion.lesion_id, "label_value": lesion.label_value, "side": lesion.side,
        "route": lesion.route, "centre_mm": list(lesion.centre_mm), "semi_axes_mm": list(lesion.semi_axes_mm),
        "rotation_about_z_deg": lesion.rotation_about_z_deg, "ct_hu": lesion.hu,
        "tn_variation": b.tn_variation, "ia_factor": b.ia_factor,
        "tn_per_cycle_factor": b.tn_per_cycle_factor,
        "uptake_half_life_h": b.uptake_half_life_h, "effective_half_life_h": b.effective_half_life_h,
        "fdg_suv": b.fdg_suv, "ga68_suv": b.ga68_suv, "adc_mm2_per_s": b.adc_mm2_per_s,
        "growth_rate_per_week": b.growth_rate_per_week,
        "longest_axial_diameter_mm": lesion.diameter_mm,
        "analytic_volume_ml": lesion.analytic_volume_ml,
        "tn_ratio_at_24h": {str(k): v for k, v in lesion.tn_at_24h.items()},
        "cumulative_dose_gy": {str(k): v for k, v in lesion.cumulative_dose_gy.items()},
        "after_cycle_imaging": {str(k): v for k, v in lesion.after_cycle_imaging.items()},
    }


def _cycle_dict(cycle: CycleTruth) -> dict:
    return {
        "cycle": cycle.cycle, "session": cycle.session, "administration": cycle.administration.as_dict(),
        "kinetics": {k: v.as_dict() for k, v in cycle.kinetics.items()},
        "effective_volume_ml": cycle.effective_volume_ml,
        "tia_mbq_h": cycle.tia_mbq_h,
        "time_points": [{"hours_post_injection": tp.hours_post_injection, "mean_bq_per_ml": tp.mean_bq_per_ml,
                         "activity_mbq": tp.activity_mbq, "tn_ratio": tp.tn_ratio,
                         "total_activity_mbq": tp.total_activity_mbq} for tp in cycle.time_points],
    }


def with_unions(per_region: dict[str, float], lesions: list[LesionTruth]) -> dict[str, float]:
    """Add lobe, liver and body totals to a per-kinetic-region table of extensive quantities (mL, MBq)."""
    out = dict(per_region)
    for side in ("right", "left"):
        out[f"lobe_{side}"] = out[f"nontumour_{side}"] + sum(
            out[le.lesion_id] for le in lesions if le.side == side)
    out["liver"] = out["lobe_right"] + out["lobe_left"]
    out["body"] = float(sum(per_region.values()))
    return out


def time_point_truth(cycle: int, hours: float, kinetics: dict[str, ExponentialSum], effective_volume_ml: dict,
                     volumes_ml: dict, lesions: list[LesionTruth]) -> TimePointTruth:
    """Truth tables at ``hours`` after the administration of ``cycle``, from the kinetics (closed form)."""
    conc = {r: float(k.concentration_bq_per_ml(hours)) for r, k in kinetics.items()}
    activity = with_unions({r: conc[r] * effective_volume_ml[r] * 1e-6 for r in kinetics}, lesions)
    # Mean over the region's voxels; a lesion shrunk below one voxel keeps its curve's value.
    mean = {r: activity[r] / volumes_ml[r] * 1e6 if volumes_ml[r] > 0 else conc[r] for r in activity}
    tn = {le.lesion_id: conc[le.lesion_id] / conc[f"nontumour_{le.side}"] for le in lesions}
    return TimePointTruth(cycle, hours, mean, activity, tn, activity["body"])
