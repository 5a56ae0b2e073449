"""Recovery-corrected lesion concentrations and T/N ratios, with their uncertainty.

For a lesion of volume V (its segmentation) whose measured mean concentration is M and whose
background (non-tumour liver of its lobe, beyond a spill-in margin) is B, the contrast recovery
CR of :mod:`.recovery` gives the true lesion-to-background ratio

    T/N = 1 + (M / B - 1) / CR(V, T/N),

solved by fixed-point iteration because CR depends on the lesion's own contrast
(:meth:`.site.SiteCalibration.contrast_recovery`); the corrected concentration is B x T/N.
A lobe's tumour is pooled after correction: T/N_lobe = sum V_i T/N_i / sum V_i (volume-weighted,
as the uncorrected pooled region is voxel-weighted). The IA/IV ratio is T/N_lobe(IA) /
T/N_lobe(IV).

Uncertainty (:mod:`.uncertainty`): counting noise of each M and B (:mod:`.noise`), the recovery
curves (principal axes of their parameter covariance, correlated across lesions and lobes), the
segmentation (each lesion's boundary +-1 voxel: its mean and volume both change; rectangular),
and, for concentrations only, the calibration factor (T/N ratios do not depend on the scale).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .boundary import BOUNDARY_RECTANGULAR_FACTOR
from .site import ContrastRecovery, SiteCalibration
from .uncertainty import UncertaintyBudget

_MAX_ITERATIONS = 50
_TOLERANCE = 1e-9
# Below this contrast recovery a correction multiplies noise by more than 20: refused (NaN, flagged).
MINIMUM_CONTRAST_RECOVERY = 0.05


@dataclass(frozen=True)
class LesionMeasurement:
    """What the correction needs of one lesion at one time point.

    ``mean_*`` in the image's units (Bq/mL), ``volume_*`` in mL (the segmentation's volume);
    ``*_plus`` / ``*_minus``: with the outline moved one voxel out / in (None: not evaluated).
    """

    key: str
    side: str
    volume_ml: float
    mean: float
    mean_sd: float
    volume_plus_ml: float | None = None
    mean_plus: float | None = None
    volume_minus_ml: float | None = None
    mean_minus: float | None = None


def corrected_ratio(measured_ratio: float, volume_ml: float, calibration: SiteCalibration,
                    curves=None) -> tuple[float, ContrastRecovery | None]:
    """(T/N corrected, the contrast recovery used) of one lesion; NaN when it cannot be corrected.

    Iterates T/N_{k+1} = 1 + (m - 1) / CR(V, T/N_k) from T/N_0 = m (the measured ratio).
    """
    if not (math.isfinite(measured_ratio) and math.isfinite(volume_ml) and volume_ml > 0):
        return math.nan, None
    ratio = measured_ratio
    recovery = None
    for _ in range(_MAX_ITERATIONS):
        recovery = calibration.contrast_recovery(volume_ml, ratio, curves)
        if not recovery.value >= MINIMUM_CONTRAST_RECOVERY:
            return math.nan, recovery
        updated = 1.0 + (measured_ratio - 1.0) / recovery.value
        if abs(updated - ratio) <= _TOLERANCE * max(abs(updated), 1.0):
            ratio = updated
            break
        ratio = updated
    return (ratio if ratio > 0 else math.nan), recovery


@dataclass
class TNCorrection:
    """Corrected lesion T/N and concentrations, pooled lobe T/N, IA/IV ratio and their budgets.

    ``lesion_tn[i]``, ``lesion_concentration[i]`` (Bq/mL) and ``recovery[i]`` follow the input
    lesions; ``lobe_tn`` by side; ``budget`` covers the result vector
    [lesion T/N..., lesion concentration..., lobe T/N (sides in order)..., IA/IV ratio].
    """

    lesion_tn: np.ndarray
    lesion_concentration: np.ndarray
    recovery: list[ContrastRecovery | None]
    sides: tuple[str, ...]
    lobe_tn: dict[str, float]
    ratio: float
    budget: UncertaintyBudget

    def lesion_columns(self, index: int) -> dict:
        """Uncertainty columns of lesion ``index`` (T/N and concentration)."""
        n = self.lesion_tn.size
        return self.budget.columns(index, "tn_mean_corrected") | self.budget.columns(
            n + index, "corrected_mean_bq_per_ml")

    def lobe_columns(self, side: str) -> dict:
        """Uncertainty columns of a lobe's pooled, corrected T/N."""
        return self.budget.columns(2 * self.lesion_tn.size + self.sides.index(side), "tn_mean_corrected")

    def ratio_columns(self) -> dict:
        """Uncertainty columns of the IA/IV ratio."""
        return self.budget.columns(2 * self.lesion_tn.size + len(self.sides), "tn_mean_corrected_ia_over_iv")


def correct_lesions(lesions: Sequence[LesionMeasurement], background: dict[str, tuple[float, float]],
                    calibration: SiteCalibration, *, sides: Sequence[str] = ("right", "left"),
                    ia_side: str | None = None) -> TNCorrection:
    """Recovery-correct every lesion, pool the lobes, form the IA/IV ratio and propagate uncertainty.

    Parameters
    ----------
    lesions : sequence of LesionMeasurement
    background : {side: (mean, sd of the mean)}
        Non-tumour liver of each lobe (same units as the lesion means).
    calibration : SiteCalibration
        With contrast-recovery curves.
    sides : sequence of str
        Lobe sides, in the order of the result vector.
    ia_side : str, optional
        Side of the intra-arterial lobe: the ratio is IA / other; None gives NaN.
    """
    sides = tuple(sides)
    n = len(lesions)
    means = np.array([le.mean for le in lesions], dtype=float)
    volumes = np.array([le.volume_ml for le in lesions], dtype=float)
    lesion_side = [le.side for le in lesions]
    backgrounds = {side: float(background[side][0]) for side in sides}

    def evaluate(state) -> np.ndarray:
        m, v, b, curves = state
        tn = np.array([corrected_ratio(m[i] / b[lesion_side[i]], v[i], calibration, curves)[0] for i in range(n)])
        concentration = np.array([tn[i] * b[lesion_side[i]] for i in range(n)])
        lobes = []
        for side in sides:
            pick = [i for i in range(n) if lesion_side[i] == side and math.isfinite(tn[i])]
            lobes.append(float(np.sum(v[pick] * tn[pick]) / np.sum(v[pick])) if pick else math.nan)
        ratio = math.nan
        if ia_side in sides:
            other = next(s for s in sides if s != ia_side)
            ratio = lobes[sides.index(ia_side)] / lobes[sides.index(other)]
        return np.concatenate([tn, concentration, lobes, [ratio]])

    base = (means, volumes, backgrounds, None)
    values = evaluate(base)
    budget = UncertaintyBudget(values)
    for i, lesion in enumerate(lesions):
        plus, minus = means.copy(), means.copy()
        plus[i] += lesion.mean_sd
        minus[i] -= lesion.mean_sd
        budget.central("counting", evaluate, (plus, volumes, backgrounds, None), (minus, volumes, backgrounds, None))
    for side in sides:
        sd = float(background[side][1])
        budget.central("counting", evaluate, (means, volumes, backgrounds | {side: backgrounds[side] + sd}, None),
                       (means, volumes, backgrounds | {side: backgrounds[side] - sd}, None))
    for curves in calibration.recovery_perturbations():
        budget.add("recovery", evaluate((means, volumes, backgrounds, curves)) - values)
    for i, lesion in enumerate(lesions):
        if lesion.mean_plus is None or lesion.mean_minus is None:
            continue
        m_plus, m_minus, v_plus, v_minus = means.copy(), means.copy(), volumes.copy(), volumes.copy()
        m_plus[i], v_plus[i] = lesion.mean_plus, lesion.volume_plus_ml
        m_minus[i], v_minus[i] = lesion.mean_minus, lesion.volume_minus_ml
        budget.central("segmentation", evaluate, (m_plus, v_plus, backgrounds, None),
                       (m_minus, v_minus, backgrounds, None), BOUNDARY_RECTANGULAR_FACTOR)
    scale = calibration.calibration_relative_sd
    if scale > 0:
        change = np.zeros_like(values)
        change[n:2 * n] = scale * values[n:2 * n]
        budget.add("calibration", change)
    recovery = [corrected_ratio(means[i] / backgrounds[lesion_side[i]], volumes[i], calibration)[1] for i in range(n)]
    return TNCorrection(values[:n], values[n:2 * n], recovery, sides,
                        {side: float(values[2 * n + k]) for k, side in enumerate(sides)}, float(values[-1]), budget)
