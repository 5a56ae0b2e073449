"""Blood samples of the synthetic patient and the truth of its blood-based red-marrow dose.

The samples follow the patient's blood curve of each cycle (the same closed-form kinetics as
its blood and red-marrow voxels): whole-blood activity concentration in kBq/mL at
:data:`BLOOD_SAMPLE_HOURS`, with a seeded relative error of :data:`BLOOD_SAMPLE_RELATIVE_SD`
(well-counter counting plus pipetting of 1 mL samples) when the patient is noisy.

The truth of the marrow dose is the EANM blood-based formula
(:func:`luprrt.dosimetry.marrow.blood_based_marrow_dose`, Hindorf et al. 2010) evaluated with
the exact kinetics: the blood curve's closed-form integral (RMBLR 1: the phantom's marrow
concentration equals blood), the phantom body's exact TIA as the whole body, and the exact
TIAs of kidneys, liver (non-tumour + lesions) and spleen. A dosimetry from the samples and
images that recovers it has measured the blood TIAC, the whole body and the organs right.
"""

from __future__ import annotations

import numpy as np

from ..dosimetry.marrow import blood_based_marrow_dose
from .truth import CycleTruth

# Sampling from minutes to a week after the administration (EANM guideline: frequent early
# samples for the fast blood clearance, then one per imaging day).
BLOOD_SAMPLE_HOURS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 24.0, 48.0, 96.0, 168.0)
BLOOD_SAMPLE_RELATIVE_SD = 0.03
KBQ_PER_BQ = 1e-3


def blood_sample_rows(cycle: CycleTruth, rng: np.random.Generator | None = None,
                      hours=BLOOD_SAMPLE_HOURS) -> list[dict]:
    """One cycle's samples as rows of :mod:`luprrt.dosimetry.blood_samples` columns (noise-free without ``rng``)."""
    t = np.asarray(hours, dtype=float)
    concentration = cycle.kinetics["blood"].concentration_bq_per_ml(t) * KBQ_PER_BQ
    if rng is not None:
        concentration = concentration * (1.0 + BLOOD_SAMPLE_RELATIVE_SD * rng.standard_normal(t.size))
    return [{"time_h": float(h), "blood_activity_concentration_kBq_per_mL": float(c)}
            for h, c in zip(t, concentration, strict=True)]


def marrow_dose_truth(cycle: CycleTruth, phantom: str = "AM") -> dict:
    """True blood-based red-marrow dose of one cycle (Gy) and its parts, as a JSON-ready dict."""
    tia = cycle.tia_mbq_h
    blood_tiac = cycle.kinetics["blood"].time_integral_bq_h_per_ml() * 1e-6
    organs = {"kidneys": tia["kidney_right"] + tia["kidney_left"], "liver": tia["liver"], "spleen": tia["spleen"]}
    dose = blood_based_marrow_dose(blood_tiac, tia["body"], organs, phantom=phantom)
    return {"cycle": cycle.cycle, "method": "blood_based_eanm", "s_value_phantom": phantom,
            "dose_gy": dose.dose_gy, "self_dose_gy": dose.self_dose_gy, "remainder_dose_gy": dose.remainder_dose_gy,
            **{f"{name}_dose_gy": value for name, value in dose.organ_dose_gy.items()},
            "blood_tiac_mbq_h_per_ml": blood_tiac, "red_marrow_tia_mbq_h": dose.red_marrow_tia_mbq_h,
            "whole_body_tia_mbq_h": tia["body"], "remainder_tia_mbq_h": dose.remainder_tia_mbq_h}
