"""Calibration factor from a uniform cylinder: counts per second per MBq set by hand into the simulation.

The simulated cylinder collects 360 counts per MBq (Poisson); read as counts with 30 s per view, the
factor is 360 / 30 = 12 cps/MBq by construction.
"""

from __future__ import annotations

import math

import pytest
import SimpleITK as sitk
from gaussian_world import cylinder_scan

from luprrt.calibration import calibrate_from_cylinder
from luprrt.physics import LU177_HALF_LIFE_H


def test_counts_image_gives_the_factor_built_into_it():
    _, image, gain = cylinder_scan()
    counts = image * gain
    result = calibrate_from_cylinder(counts, "counts", 800.0, duration_s=30.0)
    # Poisson total of 288 000 counts: 0.2 % SD; the blur conserves counts and the VOI holds its tails.
    assert result.cps_per_mbq == pytest.approx(12.0, rel=0.01)
    assert result.components["counting"] == pytest.approx(1 / math.sqrt(result.total_counts), rel=1e-9)
    assert result.relative_sd == pytest.approx(math.sqrt(0.025**2 + result.components["counting"] ** 2
                                                         + result.components["voi"] ** 2), rel=1e-12)
    # The same activity measured 24 h before the scan: the stated activity is larger by the decay.
    earlier = 800.0 / math.exp(-math.log(2) * 24.0 / LU177_HALF_LIFE_H)
    decayed = calibrate_from_cylinder(counts, "counts", earlier, duration_s=30.0, activity_hours_before_scan=24.0)
    assert decayed.cps_per_mbq == pytest.approx(result.cps_per_mbq, rel=1e-9)


def test_bq_per_ml_image_gives_the_scale_that_corrects_it():
    _, image, _ = cylinder_scan()
    result = calibrate_from_cylinder(image * 1.1, "Bq/mL", 800.0)
    assert result.bq_per_ml_scale == pytest.approx(1 / 1.1, rel=0.01) and result.cps_per_mbq is None
    assert result.components["counting"] < 0.01


def test_bad_cylinder_inputs_get_clear_errors():
    _, image, gain = cylinder_scan()
    with pytest.raises(ValueError, match="wrong image units"):
        calibrate_from_cylinder(image * 1000.0, "Bq/mL", 800.0)
    with pytest.raises(ValueError, match="activity is missing"):
        calibrate_from_cylinder(image, "Bq/mL", None)
    with pytest.raises(ValueError, match="time per view"):
        calibrate_from_cylinder(image * gain, "counts", 800.0)
    with pytest.raises(ValueError, match="units must be one of"):
        calibrate_from_cylinder(image, "kBq/mL", 800.0)
    with pytest.raises(ValueError, match="empty"):
        calibrate_from_cylinder(sitk.Image(image) * 0.0, "Bq/mL", 800.0)
