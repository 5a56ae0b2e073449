"""Camera model of the OSEM simulation: collimator resolution and protocol bookkeeping (no torch needed)."""

from __future__ import annotations

import math

import pytest

from luprrt.phantom import make_patient
from luprrt.phantom.spect_camera import SIEMENS_ME, SpectProtocol


def test_medium_energy_collimator_resolution_follows_the_geometric_formula():
    # Lead at 208.366 keV by hand: mu/rho = 0.9985 (0.4031/0.9985)^(ln(208.366/200)/ln 1.5) = 0.9107 cm2/g,
    # x 11.35 g/mL = 10.34 /cm; L_eff = 40.64 mm - 2 / (1.034 /mm) = 38.71 mm.
    mu_per_mm = 11.35 * 0.9985 * (0.4031 / 0.9985) ** (math.log(208.366 / 200.0) / math.log(1.5)) / 10.0
    l_eff = 40.64 - 2.0 / mu_per_mm
    assert SIEMENS_ME.effective_length_mm() == pytest.approx(l_eff, rel=1e-12)
    assert l_eff == pytest.approx(38.71, abs=0.01)
    protocol = SpectProtocol()
    geometric = 2.94 * (l_eff + 7.0 + 100.0) / l_eff  # 11.19 mm at 10 cm
    intrinsic = 3.8 * math.sqrt(140.5 / 208.366)  # 3.12 mm at 208 keV
    assert protocol.system_fwhm_mm(100.0) == pytest.approx(math.hypot(geometric, intrinsic), rel=1e-12)
    # A medium-energy collimator resolves ~11-12 mm at 10 cm, ~19 mm at 20 cm.
    assert 11.0 < protocol.system_fwhm_mm(100.0) < 12.5
    assert protocol.system_fwhm_mm(200.0) == pytest.approx(19.2, abs=0.3)
    assert protocol.system_sigma_mm(0.0) == pytest.approx(protocol.system_fwhm_mm(0.0) / 2.3548, rel=1e-4)


def test_protocol_timing_windows_and_bad_values():
    protocol = SpectProtocol()
    assert protocol.acquisition_duration_s == 60 * 20.0  # 120 views on two heads, 20 s each
    assert protocol.tew_window_widths_kev == pytest.approx((41.6, 12.6))
    with pytest.raises(ValueError, match="orbit"):
        SpectProtocol(orbit="elliptic")
    with pytest.raises(ValueError, match="subsets"):
        SpectProtocol(subsets=7)
    with pytest.raises(ValueError, match="150-300 keV"):
        SIEMENS_ME.effective_length_mm(140.5)


def test_make_patient_refuses_unknown_or_noise_free_osem_models():
    with pytest.raises(ValueError, match="spect_model"):
        make_patient(0, small=True, n_cycles=1, followup_weeks=(), spect_model="monte carlo")
    with pytest.raises(ValueError, match="no noise-free mode"):
        make_patient(0, small=True, n_cycles=1, followup_weeks=(), spect_model="osem", noise=False)
