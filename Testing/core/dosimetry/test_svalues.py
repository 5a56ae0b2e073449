"""Sphere and organ self S-values: the LU177.md tables, interpolation, mass scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from luprrt.dosimetry import (
    organ_s_value_dose_gy,
    organ_self_s_value,
    sphere_mass_g,
    sphere_s_value_dose_gy,
    sphere_self_s_value,
)

SPHERE_TABLE = [(1.0, 4.54), (2.0, 0.629), (5.0, 4.27e-2), (10.0, 5.46e-3), (20.0, 6.93e-4), (30.0, 2.07e-4),
                (60.0, 2.65e-5)]


@pytest.mark.parametrize(("radius_mm", "s_value"), SPHERE_TABLE)
def test_sphere_table_reproduced_at_tabulated_radii(radius_mm, s_value):
    mass_g = 4.0 / 3.0 * math.pi * radius_mm**3 / 1000.0
    assert sphere_self_s_value(mass_g) == pytest.approx(s_value, rel=0.01)


def test_log_log_interpolation_in_mass():
    # Geometric mean of the 1 mm and 2 mm masses -> geometric mean of their S-values.
    mass = math.sqrt(sphere_mass_g(1.0) * sphere_mass_g(2.0))
    assert sphere_self_s_value(mass) == pytest.approx(math.sqrt(4.54 * 0.629), rel=1e-12)
    values = sphere_self_s_value(sphere_mass_g(np.linspace(1.0, 60.0, 50)))
    assert np.all(np.diff(values) < 0)


def test_outside_table_is_an_error_or_documented_extrapolation():
    with pytest.raises(ValueError, match=r"sphere mass \[0\.001\] g is outside"):
        sphere_self_s_value(0.001)
    with pytest.raises(ValueError, match="extrapolate=True"):
        sphere_self_s_value(2000.0)
    m60 = sphere_mass_g(60.0)
    assert sphere_self_s_value(2 * m60, extrapolate=True) == pytest.approx(2.65e-5 / 2, rel=1e-9)
    with pytest.raises(ValueError, match="positive"):
        sphere_self_s_value(-1.0)


def test_sphere_dose_uses_lesion_mass():
    volume_ml = sphere_mass_g(10.0)
    assert sphere_s_value_dose_gy(1000.0, volume_ml) == pytest.approx(1000.0 * 5.46e-3 * 3.6, rel=1e-9)
    # A denser lesion of the same volume has the mass of a bigger sphere.
    assert sphere_s_value_dose_gy(1000.0, volume_ml / 1.05, density_g_per_ml=1.05) == \
        pytest.approx(1000.0 * 5.46e-3 * 3.6, rel=1e-9)


def test_organ_s_values_and_mass_scaling():
    assert organ_self_s_value("liver", "AM") == 1.3713e-5
    assert organ_self_s_value("kidney", "AF") == 1.6034e-4
    # S x m of the phantom liver is 1.04 x the electron-only 0.023696 mGy g/(MBq s) (LU177.md).
    assert 1.3713e-5 * 1799.8 / 0.023696 == pytest.approx(1.0416, abs=1e-3)
    # Twice the phantom mass: electron part 0.023696/1799.8/2, photon rest x 2^(-2/3).
    assert organ_self_s_value("liver", "AM", 2 * 1799.8) == pytest.approx(6.9276e-6, rel=1e-4)
    assert organ_self_s_value("spleen", "AM", 150.0) == pytest.approx(1.5967e-4, rel=1e-12)
    # Electron part: S x m constant.
    small, large = organ_self_s_value("kidney", "AM", 100.0), organ_self_s_value("kidney", "AM", 200.0)
    assert small * 100.0 / (large * 200.0) == pytest.approx(1.0, abs=0.01)
    assert organ_s_value_dose_gy(1000.0, "kidney", "AM") == pytest.approx(1000.0 * 1.5283e-4 * 3.6)


def test_organ_errors_list_what_exists():
    with pytest.raises(ValueError, match="organ 'spleen' in phantom 'AF'"):
        organ_self_s_value("spleen", "AF")
    with pytest.raises(ValueError, match="mass must be positive, got 0"):
        organ_self_s_value("liver", "AM", 0.0)
