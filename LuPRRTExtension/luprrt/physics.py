"""Lu-177 decay data and decay correction.

Every constant cites its source; times are in hours (h), activities in MBq,
energies in keV or J.
"""

from __future__ import annotations

import math

import numpy as np

# Half-life 6.647 d = 159.528 h: ICRP Publication 107 (2008), as served by the
# `radioactivedecay` package; EJNMMI Phys 2020;7:15 (s40658-020-00301-2) Table 1.
LU177_HALF_LIFE_H = 159.528

# Decay constant lambda = ln 2 / T1/2, in 1/h.
LU177_DECAY_CONSTANT_PER_H = math.log(2.0) / LU177_HALF_LIFE_H

# Mean beta- energy per decay, keV: EJNMMI Phys 2020;7:15 Table 1.
LU177_MEAN_BETA_ENERGY_KEV = 133.3

# Total electron energy per decay (beta + internal conversion + Auger), keV:
# EJNMMI Phys 2020;7:15 Table 1; ICRP-107 (PyPI `icrp107-database`).
LU177_ELECTRON_ENERGY_KEV = 147.9

# Total photon energy per decay (X + gamma), keV: EJNMMI Phys 2020;7:15 Table 1.
LU177_PHOTON_ENERGY_KEV = 35.1

# Principal gamma lines (energy keV, yield per decay): ICRP-107.
LU177_GAMMA_LINES_KEV_YIELD = ((208.366, 0.1038), (112.950, 0.0620))

# 1 keV in joules (CODATA 2018: 1 eV = 1.602176634e-19 J, exact).
JOULE_PER_KEV = 1.602176634e-16

# Electron energy per decay in J (147.9 keV -> 2.3696e-14 J).
LU177_ELECTRON_ENERGY_J = LU177_ELECTRON_ENERGY_KEV * JOULE_PER_KEV

SECONDS_PER_HOUR = 3600.0
# Unit conversions shared by the core (activity, volume).
BQ_PER_MBQ = 1e6
ML_PER_MM3 = 1e-3
# Mass density of soft tissue where no CT density is known: adult soft tissue, 1.03 g/cm^3 (ICRU
# Report 44, 1989). Also the density of the soft-tissue sphere S-value table (svalues.py).
SOFT_TISSUE_DENSITY_G_PER_ML = 1.03

# PET radionuclides of the baseline imaging (18F-FDG and 68Ga-octreotate PET/CT).
# F-18 half-life 109.77 min: NIST Radionuclide Half-Life Measurements (Unterweger, Hoppes,
# Schima; https://www.nist.gov/pml/radionuclide-half-life-measurements).
F18_HALF_LIFE_H = 109.77 / 60.0
# Ga-68 half-life 67.71 min: ENSDF evaluation (Nuclear Data Sheets), as served by NNDC NuDat 3.
GA68_HALF_LIFE_H = 67.71 / 60.0
# Half-life in h by radionuclide name as LuPRRT writes it ("F-18", "Ga-68").
PET_HALF_LIVES_H = {"F-18": F18_HALF_LIFE_H, "Ga-68": GA68_HALF_LIFE_H}

# Local-deposition constant for the electron emissions: absorbed dose rate in Gy/h
# per MBq/g (equivalently Gy per MBq h per g): 1e6 decays/s * 3600 s/h * E_e [J] / 1e-3 kg.
# With 147.9 keV this gives 0.0853 Gy/h per MBq/g.
LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G = 1e6 * SECONDS_PER_HOUR * LU177_ELECTRON_ENERGY_J / 1e-3


def decay_factor(elapsed_h, half_life_h: float = LU177_HALF_LIFE_H):
    """Fraction of activity left after ``elapsed_h`` hours of physical decay.

    Parameters
    ----------
    elapsed_h : float or array_like
        Elapsed time in hours (negative values give a factor > 1, i.e. back-decay).
    half_life_h : float
        Physical half-life in hours; Lu-177 by default.

    Returns
    -------
    float or numpy.ndarray
        exp(-ln2 * t / T1/2), dimensionless.
    """
    if half_life_h <= 0:
        raise ValueError(f"half-life must be positive, got {half_life_h} h")
    return np.exp(-math.log(2.0) * np.asarray(elapsed_h, dtype=float) / half_life_h)


def decay_correct(activity, from_h, to_h, half_life_h: float = LU177_HALF_LIFE_H):
    """Decay an activity (or concentration) known at ``from_h`` to the time ``to_h``.

    Times are hours on one common clock (e.g. hours after injection). The unit of
    ``activity`` is kept (MBq stays MBq, Bq/mL stays Bq/mL).
    """
    return np.asarray(activity, dtype=float) * decay_factor(np.asarray(to_h) - np.asarray(from_h), half_life_h)


def hours_between(start, end) -> float:
    """Hours from ``start`` to ``end`` (two :class:`datetime.datetime`)."""
    return (end - start).total_seconds() / SECONDS_PER_HOUR
