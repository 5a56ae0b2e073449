"""Lu-177 emissions per decay from ICRP Publication 107, read from the PyPI `icrp107-database` package.

ICRP Publication 107, "Nuclear decay data for dosimetric calculations", Ann ICRP 38(3), 2008,
as packaged by the OpenGATE collaboration (`icrp107-database` 0.0.3, the file ``Lu-177.json``):

* the beta- spectrum ``N(E)`` (electrons per decay per MeV, 101 points up to the 497.8 keV endpoint);
* discrete electrons: internal-conversion ("IE", 13.5 keV per decay) and Auger (1.1 keV);
* photons: gamma (31.6 keV per decay) and X-rays (3.5 keV), 35.1 keV in all.

Beta mean energy 133.3 keV and all electrons 147.9 keV per decay: the EJNMMI Phys 2020;7:15
(doi:10.1186/s40658-020-00301-2) Table 1 values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

KEV_PER_MEV = 1000.0


@dataclass(frozen=True)
class Lu177Emissions:
    """Lu-177 emissions per decay (ICRP-107).

    Attributes
    ----------
    beta_energy_kev, beta_per_kev : the beta- spectrum: energy grid (keV) and electrons per decay per keV,
        scaled so that its mean energy is the ICRP-107 beta- mean (133.3 keV per decay)
    discrete_electrons_kev_yield : (n, 2) conversion and Auger electrons: energy (keV), yield per decay
    photons_kev_yield : (n, 2) gamma and X-ray photons: energy (keV), yield per decay
    """

    beta_energy_kev: np.ndarray
    beta_per_kev: np.ndarray
    discrete_electrons_kev_yield: np.ndarray
    photons_kev_yield: np.ndarray

    @property
    def beta_energy_per_decay_kev(self) -> float:
        """Mean beta- energy per decay (keV)."""
        return float(np.trapezoid(self.beta_energy_kev * self.beta_per_kev, self.beta_energy_kev))

    @property
    def electron_energy_per_decay_kev(self) -> float:
        """Beta plus conversion plus Auger electron energy per decay (keV)."""
        lines = self.discrete_electrons_kev_yield
        return self.beta_energy_per_decay_kev + float(lines[:, 0] @ lines[:, 1])

    @property
    def photon_energy_per_decay_kev(self) -> float:
        """Gamma plus X-ray energy per decay (keV)."""
        return float(self.photons_kev_yield[:, 0] @ self.photons_kev_yield[:, 1])


@cache
def lu177_emissions() -> Lu177Emissions:
    """The ICRP-107 emissions of Lu-177 (cached)."""
    emissions = _icrp107_record("Lu-177")["emissions"]
    spectrum = np.asarray(emissions["b-spectra"], dtype=float)
    energy_kev = spectrum[:, 0] * KEV_PER_MEV
    per_kev = spectrum[:, 1] / KEV_PER_MEV
    # The tabulated spectrum's trapezoid mean (133.6 keV) differs from the ICRP-107 beta- mean by
    # its 101-point sampling; scale to the latter so the electron energy per decay is exact.
    beta_lines = np.asarray(emissions["beta-"], dtype=float)
    beta_mean_kev = KEV_PER_MEV * float(beta_lines[:, 0] @ beta_lines[:, 1])
    per_kev *= beta_mean_kev / np.trapezoid(energy_kev * per_kev, energy_kev)
    electrons = np.vstack([np.asarray(emissions[key], dtype=float) for key in ("IE", "auger")])
    photons = np.vstack([np.asarray(emissions[key], dtype=float) for key in ("gamma", "X")])
    electrons[:, 0] *= KEV_PER_MEV
    photons[:, 0] *= KEV_PER_MEV
    return Lu177Emissions(energy_kev, per_kev, electrons, photons)


def _icrp107_record(nuclide: str) -> dict:
    """The `icrp107-database` record of ``nuclide`` (its JSON file holds a JSON-encoded string)."""
    path = resources.files("icrp107_database").joinpath("icrp107", f"{nuclide}.json")
    return json.loads(json.loads(path.read_text(encoding="utf-8")))
