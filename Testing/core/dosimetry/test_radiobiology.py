"""Kidney BED and cumulative organ-at-risk limits with next-cycle projection."""

from __future__ import annotations

import pytest

from luprrt.dosimetry import CycleDose, assess_organ_limits, biologically_effective_dose_gy


def test_bed_formula_against_hand_computation():
    # 5 Gy, T_eff 50 h: 5 (1 + 5 x 2.8 / (52.8 x 2.6)) = 5 x 1.1019814 = 5.509907 Gy.
    assert biologically_effective_dose_gy(5.0, 50.0) == pytest.approx(5.509907, rel=1e-6)
    # Editable parameters: alpha/beta 3 Gy, T_rep 1.5 h: 4 (1 + 4 x 1.5 / (41.5 x 3)) = 4.192771 Gy.
    assert biologically_effective_dose_gy(4.0, 40.0, alpha_beta_gy=3.0, repair_half_time_h=1.5) == \
        pytest.approx(4.192771, rel=1e-6)
    assert biologically_effective_dose_gy(0.0, 50.0) == 0.0


def three_cycles(marrow_gy=0.6):
    # 0.8 Gy/GBq kidneys (5.92 Gy per 7.4 GBq), T_eff 50 h.
    return [CycleDose(7.4, 5.92, 50.0, marrow_gy) for _ in range(3)]


def test_cumulative_bed_is_sum_of_cycles_and_projection_scales_dose_per_gbq():
    result = assess_organ_limits(three_cycles(), risk_factors=True)
    per_cycle = 5.92 * (1 + 5.92 * 2.8 / (52.8 * 2.6))  # 6.634816 Gy
    assert result.kidney_bed_per_cycle_gy == pytest.approx([per_cycle] * 3, rel=1e-9)
    kidney = result.check("kidney_dose_gy")
    assert (kidney.value_gy, kidney.projected_gy, kidney.limit_gy) == pytest.approx((17.76, 23.68, 23.0))
    assert not kidney.exceeded and kidney.projected_exceeded
    bed = result.check("kidney_bed_gy")
    expected = (3 * per_cycle, 4 * per_cycle, 28.0)
    assert (bed.value_gy, bed.projected_gy, bed.limit_gy) == pytest.approx(expected)
    assert not bed.exceeded and not bed.projected_exceeded
    marrow = result.check("marrow_dose_gy")
    assert (marrow.value_gy, marrow.projected_gy) == pytest.approx((1.8, 2.4))
    assert marrow.projected_exceeded
    assert len(result.flags) == 2
    assert any("kidney_dose_gy projected 23.68 Gy" in flag for flag in result.flags)


def test_bed_limit_depends_on_risk_factors_and_exceeded_flag():
    heavy = [CycleDose(7.4, 9.0, 60.0), CycleDose(7.4, 9.0, 60.0), CycleDose(7.4, 9.0, 60.0)]
    bed_each = 9.0 * (1 + 9.0 * 2.8 / (62.8 * 2.6))  # 10.389 Gy
    with_risk = assess_organ_limits(heavy, risk_factors=True)
    without = assess_organ_limits(heavy, risk_factors=False)
    assert with_risk.check("kidney_bed_gy").exceeded  # 31.2 > 28
    assert not without.check("kidney_bed_gy").exceeded and without.check("kidney_bed_gy").limit_gy == 40.0
    assert with_risk.check("kidney_dose_gy").exceeded  # 27 > 23
    assert with_risk.check("kidney_bed_gy").value_gy == pytest.approx(3 * bed_each)
    assert any("exceeds the 23 Gy limit" in flag for flag in with_risk.flags)
    with pytest.raises(KeyError, match="marrow_dose_gy"):
        with_risk.check("marrow_dose_gy")  # no marrow dose given


def test_projection_uses_mean_dose_per_gbq_and_next_activity():
    cycles = [CycleDose(7.4, 3.7, 40.0), CycleDose(5.0, 3.0, 60.0)]  # 0.5 and 0.6 Gy/GBq
    result = assess_organ_limits(cycles, next_activity_gbq=6.0)
    next_dose = 0.55 * 6.0
    assert result.check("kidney_dose_gy").projected_gy == pytest.approx(6.7 + next_dose)
    next_bed = next_dose * (1 + next_dose * 2.8 / (52.8 * 2.6))  # mean T_eff 50 h
    expected = result.kidney_bed_per_cycle_gy.sum() + next_bed
    assert result.check("kidney_bed_gy").projected_gy == pytest.approx(expected)


def test_limit_errors():
    with pytest.raises(ValueError, match="at least one treated cycle"):
        assess_organ_limits([])
    with pytest.raises(ValueError, match=r"activities must be positive, got \[0\.0\]"):
        assess_organ_limits([CycleDose(0.0, 1.0, 50.0)])
    with pytest.raises(ValueError, match="effective half-life must be positive"):
        biologically_effective_dose_gy(2.0, 0.0)
