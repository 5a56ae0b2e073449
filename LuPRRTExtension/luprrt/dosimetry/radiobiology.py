"""Kidney biologically effective dose and organ-at-risk limits across PRRT cycles.

Kidney BED for mono-exponential clearance after an instantaneous uptake (Barone et al. J
Nucl Med 2005;46:99S; the form used by Bodei et al. Eur J Nucl Med Mol Imaging 2008;35:1847):

    BED = D (1 + D T_rep / ((T_rep + T_eff) alpha/beta))

with D the absorbed dose (Gy), T_rep the repair half-time (h), T_eff the effective
half-life (h) and alpha/beta in Gy. Defaults (Bodei et al. 2008): alpha/beta = 2.6 Gy, T_rep = 2.8 h.
Cycles are 6-10 weeks apart, so repair is taken as complete between cycles: the
cumulative BED is the sum of the per-cycle BEDs.

Limits (Bodei et al. 2008): kidney absorbed dose 23 Gy; kidney BED 28 Gy for
patients with risk factors (hypertension, diabetes, ...) and 40 Gy without; red marrow
2 Gy. Each check reports the cumulative value, the projection after the next cycle
(default 7.4 GBq; the next cycle's dose = mean dose per GBq of the cycles so far x its
activity, with the mean kidney T_eff so far for its BED) and flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KIDNEY_ALPHA_BETA_GY = 2.6
KIDNEY_REPAIR_HALF_TIME_H = 2.8
KIDNEY_DOSE_LIMIT_GY = 23.0
KIDNEY_BED_LIMIT_RISK_FACTORS_GY = 28.0
KIDNEY_BED_LIMIT_GY = 40.0
MARROW_DOSE_LIMIT_GY = 2.0
STANDARD_CYCLE_ACTIVITY_GBQ = 7.4


def biologically_effective_dose_gy(dose_gy, effective_half_life_h,
                                   alpha_beta_gy: float = KIDNEY_ALPHA_BETA_GY,
                                   repair_half_time_h: float = KIDNEY_REPAIR_HALF_TIME_H):
    """BED (Gy) of one cycle: ``D (1 + D T_rep / ((T_rep + T_eff) alpha/beta))``; arrays broadcast.

    Parameters
    ----------
    dose_gy : float or array_like
        Absorbed dose D of the cycle (Gy), finite and >= 0.
    effective_half_life_h : float or array_like
        Effective half-life T_eff of the clearance (h), positive.
    alpha_beta_gy : float
        alpha/beta ratio of the tissue (Gy); kidney 2.6 Gy by default.
    repair_half_time_h : float
        Sublethal-damage repair half-time T_rep (h); kidney 2.8 h by default.

    Returns
    -------
    numpy.ndarray
        Biologically effective dose (Gy).

    Raises
    ------
    ValueError
        Negative or non-finite dose, non-positive T_eff, alpha/beta or T_rep, naming the value.
    """
    dose = np.asarray(dose_gy, dtype=float)
    t_eff = np.asarray(effective_half_life_h, dtype=float)
    if np.any(~np.isfinite(dose) | (dose < 0)):
        raise ValueError(f"absorbed dose must be finite and >= 0, got {dose_gy} Gy")
    if np.any(~np.isfinite(t_eff) | (t_eff <= 0)):
        raise ValueError(f"effective half-life must be positive, got {effective_half_life_h} h")
    if not (alpha_beta_gy > 0 and repair_half_time_h > 0):
        raise ValueError(f"alpha/beta ({alpha_beta_gy} Gy) and repair half-time ({repair_half_time_h} h) "
                         f"must be positive")
    return dose * (1.0 + dose * repair_half_time_h / ((repair_half_time_h + t_eff) * alpha_beta_gy))


@dataclass(frozen=True)
class CycleDose:
    """Organ doses of one treatment cycle.

    Attributes
    ----------
    activity_gbq : administered activity (GBq)
    kidney_dose_gy : mean kidney absorbed dose (Gy)
    kidney_effective_half_life_h : kidney effective half-life (h), for the BED
    marrow_dose_gy : red-marrow absorbed dose (Gy), if estimated
    """

    activity_gbq: float
    kidney_dose_gy: float
    kidney_effective_half_life_h: float
    marrow_dose_gy: float | None = None


@dataclass(frozen=True)
class LimitCheck:
    """One organ-at-risk limit: cumulative and projected values against the limit."""

    quantity: str
    value_gy: float
    projected_gy: float
    limit_gy: float
    exceeded: bool
    projected_exceeded: bool


@dataclass(frozen=True)
class SafetyAssessment:
    """Per-cycle BEDs, limit checks and flags after the cycles so far."""

    kidney_bed_per_cycle_gy: np.ndarray
    next_activity_gbq: float
    checks: list[LimitCheck]
    flags: list[str] = field(default_factory=list)

    def check(self, quantity: str) -> LimitCheck:
        """The check of ``quantity`` (e.g. ``"kidney_bed_gy"``)."""
        for item in self.checks:
            if item.quantity == quantity:
                return item
        raise KeyError(f"no limit check {quantity!r}; have {[c.quantity for c in self.checks]}")


def assess_organ_limits(cycles: list[CycleDose], risk_factors: bool = False,
                        next_activity_gbq: float = STANDARD_CYCLE_ACTIVITY_GBQ,
                        alpha_beta_gy: float = KIDNEY_ALPHA_BETA_GY,
                        repair_half_time_h: float = KIDNEY_REPAIR_HALF_TIME_H,
                        kidney_dose_limit_gy: float = KIDNEY_DOSE_LIMIT_GY,
                        marrow_dose_limit_gy: float = MARROW_DOSE_LIMIT_GY) -> SafetyAssessment:
    """Check cumulative kidney dose, kidney BED and marrow dose against their limits.

    Parameters
    ----------
    cycles : list of CycleDose
        The cycles given so far (at least one).
    risk_factors : bool
        Kidney risk factors present: BED limit 28 Gy instead of 40 Gy (Bodei et al. 2008).
    next_activity_gbq : float
        Activity of the next cycle for the projection (GBq).

    Returns
    -------
    SafetyAssessment
        ``checks`` for ``kidney_dose_gy``, ``kidney_bed_gy`` and (when every cycle has a
        marrow dose) ``marrow_dose_gy``; ``flags`` holds one message per exceeded or
        projected-exceeded limit.
    """
    if not cycles:
        raise ValueError("need at least one treated cycle to assess organ limits")
    activity = np.array([c.activity_gbq for c in cycles], dtype=float)
    if np.any(~np.isfinite(activity) | (activity <= 0)):
        raise ValueError(f"administered activities must be positive, got {activity.tolist()} GBq")
    if not (np.isfinite(next_activity_gbq) and next_activity_gbq >= 0):
        raise ValueError(f"next-cycle activity must be >= 0, got {next_activity_gbq} GBq")
    kidney = np.array([c.kidney_dose_gy for c in cycles], dtype=float)
    t_eff = np.array([c.kidney_effective_half_life_h for c in cycles], dtype=float)
    bed = biologically_effective_dose_gy(kidney, t_eff, alpha_beta_gy, repair_half_time_h)
    next_kidney = float(np.mean(kidney / activity)) * next_activity_gbq
    next_bed = float(biologically_effective_dose_gy(next_kidney, float(np.mean(t_eff)), alpha_beta_gy,
                                                     repair_half_time_h))
    bed_limit = KIDNEY_BED_LIMIT_RISK_FACTORS_GY if risk_factors else KIDNEY_BED_LIMIT_GY
    values = [("kidney_dose_gy", float(kidney.sum()), next_kidney, kidney_dose_limit_gy),
              ("kidney_bed_gy", float(bed.sum()), next_bed, bed_limit)]
    marrow = [c.marrow_dose_gy for c in cycles]
    if all(m is not None for m in marrow):
        marrow_gy = np.array(marrow, dtype=float)
        if np.any(~np.isfinite(marrow_gy) | (marrow_gy < 0)):
            raise ValueError(f"marrow doses must be finite and >= 0, got {marrow_gy.tolist()} Gy")
        values.append(("marrow_dose_gy", float(marrow_gy.sum()),
                       float(np.mean(marrow_gy / activity)) * next_activity_gbq, marrow_dose_limit_gy))
    checks, flags = [], []
    for quantity, value, next_value, limit in values:
        projected = value + next_value
        check = LimitCheck(quantity, value, projected, limit, value > limit, projected > limit)
        checks.append(check)
        if check.exceeded:
            flags.append(f"{quantity} {value:.2f} Gy after {len(cycles)} cycles exceeds the {limit:g} Gy "
                         f"limit")
        elif check.projected_exceeded:
            flags.append(f"{quantity} projected {projected:.2f} Gy after a further {next_activity_gbq:g} GBq "
                         f"cycle would exceed the {limit:g} Gy limit (now {value:.2f} Gy)")
    return SafetyAssessment(bed, float(next_activity_gbq), checks, flags)
