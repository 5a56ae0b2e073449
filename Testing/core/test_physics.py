"""Lu-177 decay data and decay correction against hand values (ICRP-107; EJNMMI Phys 2020;7:15 Table 1)."""

from __future__ import annotations

import math

import pytest

from luprrt.physics import (
    LU177_DECAY_CONSTANT_PER_H,
    LU177_HALF_LIFE_H,
    LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G,
    decay_correct,
    decay_factor,
)


def test_constants_match_the_reference_table():
    assert LU177_HALF_LIFE_H == 159.528  # 6.647 d, ICRP-107
    assert LU177_DECAY_CONSTANT_PER_H == pytest.approx(math.log(2) / 159.528, rel=1e-15)
    # 147.9 keV of electrons per decay -> 1e6 s^-1 x 3600 s x 2.3696e-14 J / 1e-3 kg = 0.0853 Gy per MBq h per g.
    assert LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G == pytest.approx(0.0853, abs=5e-5)


def test_one_half_life_halves_the_activity_both_ways():
    assert decay_factor(LU177_HALF_LIFE_H) == pytest.approx(0.5, rel=1e-14)
    assert decay_correct(7400.0, 0.0, 2 * LU177_HALF_LIFE_H) == pytest.approx(1850.0, rel=1e-14)
    # Back to the injection time (negative elapsed time) restores the activity.
    assert decay_correct(1850.0, 2 * LU177_HALF_LIFE_H, 0.0) == pytest.approx(7400.0, rel=1e-14)
    assert decay_correct([100.0, 200.0], 24.0, 48.0, half_life_h=24.0).tolist() == pytest.approx([50.0, 100.0])


def test_non_positive_half_life_is_refused():
    with pytest.raises(ValueError, match="half-life must be positive, got 0 h"):
        decay_factor(1.0, half_life_h=0)
