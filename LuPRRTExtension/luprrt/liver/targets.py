"""The IA-vs-IV trial's own endpoint: up to three target lesions larger than 3 cm per lobe.

The LUTIA analysis (Ebbers et al., Eur J Nucl Med Mol Imaging 2024; 27 patients) measured, per
liver lobe, the mean-uptake T/N of up to three target lesions larger than 3 cm on the 24 h
SPECT/CT after cycle 1, and compared the intra-arterially treated lobe with the contralateral
lobe (paired t-test; mean T/N 17.4 vs 16.2, ratio 1.17, 95 % CI 1.00-1.37).

Here a lesion's size is its longest axial diameter on the segmentation
(:func:`luprrt.response.segment_diameters`, as RECIST 1.1 measures it); per lobe the lesions
with a diameter above ``min_diameter_mm`` are ranked largest first and the first
``max_per_lobe`` are the targets (:func:`select_target_lesions`). The lobe's endpoint is the
arithmetic mean of its targets' lesion T/N (:func:`trial_endpoint_rows`; the recovery-corrected
T/N too when present), and the IA/IV ratio is the IA lobe's endpoint over the IV lobe's. The
all-lesion lobe T/N (pooled tumour) stays in the T/N table as a sensitivity analysis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..grid import image_on_grid
from ..response import lesion_diameters
from ..segments import SIDES, Segment, Segmentation

TRIAL_TARGETS_PER_LOBE = 3
TRIAL_MIN_DIAMETER_MM = 30.0
TARGET_COLUMNS = ("longest_diameter_mm", "target_lesion", "target_rank")
TRIAL_COLUMNS = ("cycle", "hours_post_injection", "side", "route", "n_lesions", "n_targets", "target_lesion_ids",
                 "target_diameters_mm", "tn_mean_targets", "tn_mean_corrected_targets", "definition")
TRIAL_RATIO_COLUMNS = ("cycle", "hours_post_injection", "ia_side", "n_targets_ia", "n_targets_iv",
                       "tn_mean_targets_ia", "tn_mean_targets_iv", "tn_mean_targets_ia_over_iv",
                       "tn_mean_corrected_targets_ia", "tn_mean_corrected_targets_iv",
                       "tn_mean_corrected_targets_ia_over_iv", "definition")


def trial_definition(max_per_lobe: int = TRIAL_TARGETS_PER_LOBE,
                     min_diameter_mm: float = TRIAL_MIN_DIAMETER_MM) -> str:
    """The endpoint definition as table text."""
    return (f"up to {max_per_lobe} target lesions > {min_diameter_mm:g} mm (longest axial diameter) per lobe, "
            "largest first; mean of their mean-uptake T/N (Ebbers et al. EJNMMI 2024)")


def lesion_longest_diameters_mm(segmentation: Segmentation, lesions: Sequence[Segment]) -> dict[str, float]:
    """Longest axial diameter (mm) of each lesion segment on the segmentation's grid, by segment id."""
    result = {}
    for lesion in lesions:
        mask = image_on_grid(segmentation.mask_array(lesion.segment_id).astype(np.uint8), segmentation.reference)
        result[lesion.segment_id] = float(lesion_diameters(mask).longest_diameter_mm)
    return result


def select_target_lesions(lesions: Sequence[tuple[str, str, float]], *, max_per_lobe: int = TRIAL_TARGETS_PER_LOBE,
                          min_diameter_mm: float = TRIAL_MIN_DIAMETER_MM) -> dict[str, int]:
    """Target lesions per lobe: ``{key: rank}`` (rank 1 = largest) of (key, side, diameter mm) entries.

    Lesions with a diameter strictly above ``min_diameter_mm``, largest first, at most
    ``max_per_lobe`` per side (ties keep the input order).
    """
    if max_per_lobe < 1:
        raise ValueError(f"the number of target lesions per lobe must be >= 1, got {max_per_lobe}")
    if not (math.isfinite(min_diameter_mm) and min_diameter_mm >= 0):
        raise ValueError(f"the minimum target diameter must be >= 0 mm, got {min_diameter_mm}")
    targets = {}
    for side in {entry[1] for entry in lesions}:
        eligible = [(key, diameter) for key, s, diameter in lesions if s == side and diameter > min_diameter_mm]
        eligible.sort(key=lambda item: -item[1])
        for rank, (key, _) in enumerate(eligible[:max_per_lobe], start=1):
            targets[key] = rank
    return targets


def trial_endpoint_rows(rows: Sequence[dict], definition: str) -> tuple[list[dict], list[dict]]:
    """Per cycle, time point and lobe: the target lesions and their mean T/N; and the IA/IV ratio rows.

    ``rows`` are T/N rows with :data:`TARGET_COLUMNS` (and ``tn_mean_corrected`` when calibrated).
    """
    lobe_rows, ratio_rows = [], []
    keys = sorted({(row["cycle"], row["hours_post_injection"]) for row in rows})
    for cycle, hours in keys:
        at = [row for row in rows if row["cycle"] == cycle and row["hours_post_injection"] == hours]
        by_side = {}
        for side in SIDES:
            lesions = [row for row in at if row["role"] == "lesion" and row["side"] == side]
            targets = sorted((row for row in lesions if row.get("target_lesion")), key=lambda r: r["target_rank"])
            route = next((row["route"] for row in at if row["role"] == "lobe" and row["side"] == side), None)
            corrected = [row.get("tn_mean_corrected") for row in targets]
            entry = {"cycle": cycle, "hours_post_injection": hours, "side": side, "route": route,
                     "n_lesions": len(lesions), "n_targets": len(targets),
                     "target_lesion_ids": ";".join(str(row["lesion_id"] or row["region"]) for row in targets),
                     "target_diameters_mm": ";".join(f"{row['longest_diameter_mm']:.1f}" for row in targets),
                     "tn_mean_targets": _mean([row["tn_mean"] for row in targets]),
                     "tn_mean_corrected_targets": (_mean(corrected) if targets and None not in corrected
                                                   else None),
                     "definition": definition}
            lobe_rows.append(entry)
            by_side[route] = entry
        if "IA" in by_side and "IV" in by_side:
            ia, iv = by_side["IA"], by_side["IV"]
            ratio = {"cycle": cycle, "hours_post_injection": hours, "ia_side": ia["side"],
                     "n_targets_ia": ia["n_targets"], "n_targets_iv": iv["n_targets"],
                     "tn_mean_targets_ia": ia["tn_mean_targets"], "tn_mean_targets_iv": iv["tn_mean_targets"],
                     "tn_mean_targets_ia_over_iv": _ratio(ia["tn_mean_targets"], iv["tn_mean_targets"]),
                     "tn_mean_corrected_targets_ia": ia["tn_mean_corrected_targets"],
                     "tn_mean_corrected_targets_iv": iv["tn_mean_corrected_targets"],
                     "tn_mean_corrected_targets_ia_over_iv": _ratio(ia["tn_mean_corrected_targets"],
                                                                    iv["tn_mean_corrected_targets"]),
                     "definition": definition}
            ratio_rows.append(ratio)
    return lobe_rows, ratio_rows


def _mean(values) -> float:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else math.nan


def _ratio(a, b) -> float | None:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return None if a is None or b is None else math.nan
    return float(a / b)
