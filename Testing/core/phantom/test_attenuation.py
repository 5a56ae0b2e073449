"""Attenuation at 208 keV: NIST interpolation, material scaling, bilinear HU-to-mu, tissue truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from luprrt.phantom import hu_to_mu_per_cm, linear_attenuation_per_cm, tissue_mu_per_cm
from luprrt.phantom.anatomy import BONE, FAT, LIVER, LUNG
from luprrt.phantom.attenuation import mass_attenuation_cm2_per_g


def _loglog(e, e0, v0, e1, v1):
    return v0 * (v1 / v0) ** (math.log(e / e0) / math.log(e1 / e0))


MU_W = _loglog(208.366, 200.0, 0.1370, 300.0, 0.1186)  # water at 208 keV: 0.13501 /cm
MU_W70 = _loglog(70.0, 60.0, 0.2059, 80.0, 0.1837)  # water at the CT's 70 keV: 0.19369 /cm
MU_B = 1.92 * _loglog(208.366, 200.0, 0.1309, 300.0, 0.1113)  # cortical bone at 208 keV
MU_B70 = 1.92 * _loglog(70.0, 60.0, 0.3148, 80.0, 0.2229)


def test_water_and_bone_match_hand_interpolation_of_nist():
    assert MU_W == pytest.approx(0.13501, abs=1e-5)
    assert linear_attenuation_per_cm("water") == pytest.approx(MU_W, rel=1e-12)
    assert mass_attenuation_cm2_per_g("water", 70.0) == pytest.approx(MU_W70, rel=1e-12)
    assert linear_attenuation_per_cm("cortical bone") == pytest.approx(MU_B, rel=1e-12)
    # PMMA by Compton scaling: Z/A 0.53937 vs water's 0.55508, density 1.19 -> 0.1561 /cm.
    assert linear_attenuation_per_cm("pmma") == pytest.approx(1.19 * MU_W * 0.53937 / 0.55508, rel=1e-12)
    with pytest.raises(ValueError, match="Compton"):
        mass_attenuation_cm2_per_g("pmma", 70.0)
    with pytest.raises(ValueError, match="unknown material"):
        mass_attenuation_cm2_per_g("lead")


def test_bilinear_hu_to_mu_has_the_two_mixture_branches():
    hu_bone = 1000.0 * (MU_B70 - MU_W70) / MU_W70  # ~1594 HU for 1.92 g/mL cortical bone at 70 keV
    slope = (MU_B - MU_W) / hu_bone  # ~7.04e-5 /cm per HU
    mu = hu_to_mu_per_cm([-1200.0, -1000.0, -500.0, 0.0, 500.0, hu_bone])
    np.testing.assert_allclose(mu, [0.0, 0.0, 0.5 * MU_W, MU_W, MU_W + 500 * slope, MU_B], rtol=1e-10)
    assert slope == pytest.approx(7.04e-5, rel=2e-3)


def test_tissue_truth_differs_from_the_sites_bilinear_estimate_as_real_tissue_does():
    lut = tissue_mu_per_cm()
    assert lut[LIVER] == pytest.approx(1.06 * _loglog(208.366, 200, 0.1358, 300, 0.1176), rel=1e-12)
    assert lut[LUNG] == pytest.approx(0.26 * _loglog(208.366, 200, 0.1359, 300, 0.1177), rel=1e-12)
    # Fat at -100 HU: the air-water branch says 0.90 x water, ICRU adipose is 0.95 g/mL: 5 % apart.
    assert hu_to_mu_per_cm(-100.0) / lut[FAT] == pytest.approx(0.949, abs=0.005)
    # The phantom's 350 HU bone class is a water-bone mixture: the bilinear estimate is exact for it.
    assert lut[BONE] == pytest.approx(float(hu_to_mu_per_cm(350.0)), rel=1e-9)
