"""The site calibration: fitted from the Gaussian world, written and read back, tables, contrast choice."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gaussian_world import FWHM_MM, site_calibration

from luprrt.calibration import (
    RecoveryCurve,
    SiteCalibration,
    read_site_calibration,
    recovery_model,
    write_site_calibration,
)


def test_calibration_of_the_gaussian_world(tmp_path):
    calibration = site_calibration()
    # The spheres' 1 mm cold glass walls lower the recovery a little: the effective FWHM comes out up to
    # ~10 % above the 10 mm blur.
    assert FWHM_MM <= calibration.effective_fwhm_mm <= 1.1 * FWHM_MM
    assert calibration.effective_fwhm_sd_mm < 0.5
    # White Poisson noise: SD proportional to sqrt(level), p = 1/2 (clipped range 0.5-1.5).
    assert calibration.noise_exponent == pytest.approx(0.5, abs=0.15)
    assert [c.sphere_to_background for c in calibration.contrast_curves] == [4.0, 10.0]
    assert calibration.smallest_sphere_ml == pytest.approx(0.5236, rel=1e-3)
    assert not calibration.max_not_recommended  # no resolution recovery, no overshoot
    path = write_site_calibration(calibration, tmp_path / "site.json")
    again = read_site_calibration(path)
    assert again.to_json_dict() == json.loads(path.read_text())
    assert again.contrast_recovery(5.0, 7.0).value == pytest.approx(calibration.contrast_recovery(5.0, 7.0).value,
                                                                     rel=1e-12)
    with pytest.raises(FileExistsError):
        write_site_calibration(calibration, path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data | {"version": 99}))
    with pytest.raises(ValueError, match="version 99 is not supported"):
        read_site_calibration(path)
    path.write_text(json.dumps(data | {"format": "something else"}))
    with pytest.raises(ValueError, match="not a LuPRRT site calibration"):
        read_site_calibration(path)


def _flat(value: float, ratio: float | None) -> RecoveryCurve:
    """A curve equal to ``value`` at every volume above 0.01 mL (b tiny)."""
    return RecoveryCurve("contrast", ratio, (value, 1e-6, 1.0), np.diag([1e-4, 0.0, 0.0]), (0.5, 1, 2, 4),
                         (value,) * 4, (0.01,) * 4)


def test_contrast_interpolation_and_margin_rule():
    calibration = SiteCalibration(curves=(_flat(0.4, 4.0), _flat(0.6, 10.0)), effective_fwhm_mm=8.0)
    assert calibration.contrast_recovery(2.0, 7.0).value == pytest.approx(0.5, rel=1e-5)
    assert "interpolated between the 4:1 and 10:1" in calibration.contrast_recovery(2.0, 7.0).curve
    high = calibration.contrast_recovery(2.0, 25.0)
    assert high.value == pytest.approx(0.6, rel=1e-5) and "above the largest" in high.curve
    assert calibration.contrast_recovery(0.1, 5.0).below_smallest_sphere
    assert calibration.nontumour_margin() == (16.0, "2 x effective FWHM 8.0 mm (site calibration)")
    small = SiteCalibration(curves=(_flat(0.5, None),), effective_fwhm_mm=3.0)
    margin, rule = small.nontumour_margin()
    assert margin == 10.0 and "raised to the 10 mm minimum" in rule


def test_recovery_tables_are_read_and_converted(tmp_path):
    volumes = np.array([0.52, 1.15, 2.57, 5.58, 11.49, 26.52])
    contrast = recovery_model(volumes, 0.8, 3.0, 1.2)
    ratio = 4.0
    mean = (contrast * (ratio - 1.0) + 1.0) / ratio  # measured mean / sphere concentration
    lines = ["volume_ml,rc,sphere_to_background,quantity"]
    lines += [f"{v},{m},{ratio},mean" for v, m in zip(volumes, mean, strict=True)]
    lines += [f"{v},{c},10,contrast" for v, c in zip(volumes, contrast * 1.05, strict=True)]
    (tmp_path / "rc.csv").write_text("\n".join(lines) + "\n")
    calibration = read_site_calibration(tmp_path / "rc.csv")
    four, ten = calibration.contrast_curves
    assert four.parameters == pytest.approx((0.8, 3.0, 1.2), rel=1e-4)
    assert ten(5.0) == pytest.approx(1.05 * recovery_model(5.0, 0.8, 3.0, 1.2), rel=1e-5)
    assert calibration.effective_fwhm_mm > 0 and calibration.cps_per_mbq is None
    (tmp_path / "bad.csv").write_text("volume,rc\n1,0.5\n")
    with pytest.raises(ValueError, match="needs columns volume_ml and rc"):
        read_site_calibration(tmp_path / "bad.csv")
    (tmp_path / "three.csv").write_text("volume_ml,rc\n1,0.5\n2,0.6\n3,0.65\n")
    with pytest.raises(ValueError, match="at least 4 spheres"):
        read_site_calibration(tmp_path / "three.csv")
