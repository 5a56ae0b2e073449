"""Blood-based red-marrow dose of each treatment cycle, beside the imaging-based one.

Per cycle with blood samples (:mod:`luprrt.dosimetry.blood_samples`), the EANM blood-based
method (Hindorf et al., Eur J Nucl Med Mol Imaging 2010;37:1238-1250;
:mod:`luprrt.dosimetry.marrow`):

* blood TIAC: mono- or bi-exponential clearance fitted to the samples (AICc);
* whole-body TIA: from the urine samples when the CSV has them (injected activity minus the
  cumulative excretion, physical decay after the last sample), else from imaging: the SPECT
  activity inside the body at each scan, integrated by the region rule of :mod:`.dose_tac`
  (a single-scan cycle by the hybrid with the earlier cycle's whole-body fit). The imaging
  route counts only the SPECT field of view (the rest of the body is missing unless the scans
  cover it): its rows say so;
* organ cross-dose sources: kidneys, liver (its lesions included) and spleen, with the cycle's
  primary region TIAs.

The marrow segment's imaging-based dose (voxel S-value or local deposition of the SPECT) stays
in the dose table and is shown beside the blood-based value in ``marrow.csv`` and in the
limits: it misses the fast blood phase before the first scan, so the limit uses the blood-based
dose whenever every cycle has blood samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..dosimetry.blood_samples import BloodSamples, read_blood_samples
from ..dosimetry.marrow import (
    BloodClearanceFit,
    MarrowDose,
    blood_based_marrow_dose,
    fit_blood_clearance,
    whole_body_tia_from_excretion_mbq_h,
)
from .dose_tac import fit_region_tac, single_scan_estimates

MARROW_METHOD = "blood_based_eanm"
MARROW_COLUMNS = ("patient_id", "cycle", "method", "dose_gy", "cumulative_dose_gy", "self_dose_gy",
                  "self_dose_sd_gy", "remainder_dose_gy", "kidneys_dose_gy", "liver_dose_gy", "spleen_dose_gy",
                  "blood_tiac_mbq_h_per_ml", "blood_tiac_sd_mbq_h_per_ml", "blood_model", "blood_samples",
                  "red_marrow_tia_mbq_h", "rmblr", "red_marrow_mass_g", "s_value_phantom", "whole_body_tia_mbq_h",
                  "whole_body_source", "remainder_tia_mbq_h", "imaging_dose_gy", "imaging_method",
                  "imaging_cumulative_dose_gy", "flags")
_ORGAN_ROLES = {"kidney": "kidneys", "liver": "liver", "spleen": "spleen"}


@dataclass
class CycleMarrow:
    """Blood-based marrow dose of one cycle and what it came from."""

    cycle: int
    dose: MarrowDose
    blood_fit: BloodClearanceFit
    whole_body_tia_mbq_h: float
    whole_body_source: str
    whole_body_fit: object | None
    source: str
    flags: list[str] = field(default_factory=list)


def resolve_blood_samples(given, cycles: list[int]) -> dict[int, BloodSamples]:
    """Blood samples per cycle from ``given``.

    ``given`` is a CSV path (with a ``cycle`` column, or one cycle's samples when one cycle is
    processed), a mapping cycle -> path or :class:`BloodSamples`, or None (none).

    Raises
    ------
    ValueError
        A file without a cycle column for several cycles, or samples of a cycle not processed.
    """
    if given is None:
        return {}
    if isinstance(given, str | Path):
        samples = read_blood_samples(given)
        if None in samples:
            if len(cycles) != 1:
                raise ValueError(f"blood samples {given} have no 'cycle' column but cycles {cycles} are processed; add "
                                 f"a cycle column, or give one file per cycle as CYCLE:FILE")
            return {cycles[0]: samples[None]}
        return {c: s for c, s in samples.items() if c in cycles}
    out = {}
    for cycle, value in dict(given).items():
        if isinstance(value, BloodSamples):
            out[int(cycle)] = value
            continue
        samples = read_blood_samples(value)
        chosen = samples.get(int(cycle), samples.get(None))
        if chosen is None:
            raise ValueError(f"blood samples {value}: no samples of cycle {cycle} (cycles {sorted(samples)})")
        out[int(cycle)] = chosen
    return out


def cycle_marrow_dose(cycle: int, activity_mbq: float, samples: BloodSamples, times_h: np.ndarray,
                      body_activity_mbq: np.ndarray, dose_rows: list[dict], primary: list[bool], *,
                      phantom: str = "AM", rmblr: float = 1.0, reference_body_fit=None) -> CycleMarrow:
    """The blood-based red-marrow dose of one cycle (module docstring).

    ``dose_rows``/``primary``: the cycle's dose rows (:data:`.dose_cycle.DOSE_COLUMNS`), for the
    organs' primary TIAs; ``body_activity_mbq`` the SPECT activity inside the body at ``times_h``.

    Raises
    ------
    ValueError
        Blood samples that no clearance fits, or a whole-body TIA that cannot be estimated (named).
    """
    try:
        blood = fit_blood_clearance(samples.times_h, samples.blood_kbq_per_ml)
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"cycle {cycle}: blood samples {samples.source}: {error}") from error
    flags = list(blood.flags)
    body_fit = None
    if samples.urine_cumulative_excreted_percent is not None:
        whole_body = whole_body_tia_from_excretion_mbq_h(activity_mbq, samples.times_h,
                                                        samples.urine_cumulative_excreted_percent / 100.0)
        source = "injected minus urinary excretion (physical decay after the last sample)"
    elif times_h.size >= 2:
        body_fit = fit_region_tac(times_h, np.maximum(body_activity_mbq, 0.0), "auto")
        whole_body = float(body_fit.tia_mbq_h)
        source = f"imaging: SPECT field of view, {body_fit.model} fit of the body activity"
    else:
        estimate = next(e for e in single_scan_estimates(float(times_h[0]), float(body_activity_mbq[0]),
                                                         reference_body_fit) if e.primary)
        whole_body = estimate.tia_mbq_h
        source = f"imaging: SPECT field of view, single scan ({estimate.model})"
    if not math.isfinite(whole_body):
        raise ValueError(f"cycle {cycle}: the whole-body TIA could not be estimated from the body activity "
                         f"{body_activity_mbq.tolist()} MBq at {times_h.tolist()} h; give urine samples")
    organs = _organ_tia_mbq_h(dose_rows, primary)
    dose = blood_based_marrow_dose(blood.tiac_mbq_h_per_ml, whole_body, organs, phantom=phantom, rmblr=rmblr,
                                   blood_tiac_sd_mbq_h_per_ml=blood.tiac_sd_kbq_h_per_ml / 1000.0)
    flags += dose.flags
    return CycleMarrow(cycle, dose, blood, whole_body, source, body_fit, samples.source, flags)


def _organ_tia_mbq_h(dose_rows: list[dict], primary: list[bool]) -> dict[str, float]:
    """Primary TIAs (MBq h) of kidneys (summed), liver (or non-tumour liver + lesions) and spleen."""
    tia: dict[str, float] = {}
    seen = set()
    for row, is_primary in zip(dose_rows, primary, strict=True):
        if not is_primary or row["method"] != "local_deposition" or row["region"] in seen:
            continue
        if not (row["tia_mbq_h"] is not None and math.isfinite(row["tia_mbq_h"])):
            continue
        seen.add(row["region"])
        role = row["role"]
        key = _ORGAN_ROLES.get(role, "liver_parts" if role in ("non-tumour", "lesion") else None)
        if key is not None:
            tia[key] = tia.get(key, 0.0) + float(row["tia_mbq_h"])
    parts = tia.pop("liver_parts", 0.0)
    if "liver" not in tia and parts > 0:
        tia["liver"] = parts
    return tia


def marrow_rows(patient_id: str, marrows: list[CycleMarrow], imaging: Mapping[int, tuple[float | None, str | None]],
                phantom: str) -> list[dict]:
    """``marrow.csv`` rows (:data:`MARROW_COLUMNS`): red-marrow doses (Gy) per cycle.

    Each row has the blood-based dose with its parts and cumulative value, and the imaging-based
    marrow dose beside it (``imaging``: cycle -> (dose Gy, method)).
    """
    rows, cumulative, imaging_cumulative = [], 0.0, 0.0
    for marrow in marrows:
        dose = marrow.dose
        cumulative += dose.dose_gy
        imaging_dose, imaging_method = imaging.get(marrow.cycle, (None, None))
        if imaging_dose is not None:
            imaging_cumulative += imaging_dose
        row = {"patient_id": patient_id, "cycle": marrow.cycle, "method": MARROW_METHOD, "dose_gy": dose.dose_gy,
               "cumulative_dose_gy": cumulative, "self_dose_gy": dose.self_dose_gy,
               "self_dose_sd_gy": dose.self_dose_sd_gy, "remainder_dose_gy": dose.remainder_dose_gy,
               **{f"{organ}_dose_gy": value for organ, value in dose.organ_dose_gy.items()},
               "blood_tiac_mbq_h_per_ml": dose.blood_tiac_mbq_h_per_ml,
               "blood_tiac_sd_mbq_h_per_ml": marrow.blood_fit.tiac_sd_kbq_h_per_ml / 1000.0,
               "blood_model": marrow.blood_fit.model, "blood_samples": marrow.source,
               "red_marrow_tia_mbq_h": dose.red_marrow_tia_mbq_h, "rmblr": dose.rmblr,
               "red_marrow_mass_g": dose.red_marrow_mass_g, "s_value_phantom": phantom,
               "whole_body_tia_mbq_h": marrow.whole_body_tia_mbq_h, "whole_body_source": marrow.whole_body_source,
               "remainder_tia_mbq_h": dose.remainder_tia_mbq_h, "imaging_dose_gy": imaging_dose,
               "imaging_method": None if imaging_method is None else f"imaging-based marrow segment, {imaging_method}",
               "imaging_cumulative_dose_gy": imaging_cumulative if imaging_dose is not None else None,
               "flags": "; ".join(marrow.flags)}
        rows.append({column: row.get(column) for column in MARROW_COLUMNS})
    return rows
