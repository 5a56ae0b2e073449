"""First-order propagation of uncertainty through a chain of calculations, source by source.

The EANM practical guidance on uncertainty analysis for molecular radiotherapy (Gear et al., Eur J
Nucl Med Mol Imaging 2018;45:2456-2474, following JCGM 100:2008, the GUM) propagates the
standard uncertainty of every input through the dosimetry chain with the sensitivity of each
result to it, and adds independent contributions in quadrature. Here the sensitivities are
finite differences of the whole calculation:

* an input with standard uncertainty u is moved by +-u and the result's change is
  (f(x + u) - f(x - u)) / 2 (central difference);
* correlated inputs (the three parameters of a recovery curve, shared by every lesion) are moved
  together along the principal axes of their covariance, each axis one independent contribution
  (:meth:`luprrt.calibration.RecoveryCurve.parameter_perturbations`);
* bounded inputs (a segmentation boundary known to +-1 voxel) contribute half the range of the
  result times 1/sqrt(3) (:mod:`.boundary`).

Contributions of one source add in quadrature into that source's standard uncertainty; the sources
(counting noise, calibration factor, recovery curve, segmentation) are independent and add in
quadrature into the combined standard uncertainty u_c. The 95 % interval is value +- 1.96 u_c
(coverage factor of a normal distribution, GUM section 6.3).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

COVERAGE_FACTOR_95 = 1.959963984540054
SOURCES = ("counting", "calibration", "recovery", "segmentation")


@dataclass
class UncertaintyBudget:
    """Standard-uncertainty contributions of each source to a vector of results (same units as the results)."""

    values: np.ndarray
    contributions: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, source: str, change) -> None:
        """Add one independent first-order change of the results (its square adds to ``source``)."""
        change = np.nan_to_num(np.asarray(change, dtype=float))
        previous = self.contributions.get(source, np.zeros_like(self.values, dtype=float))
        self.contributions[source] = np.sqrt(previous**2 + change**2)

    def central(self, source: str, evaluate: Callable[..., np.ndarray], plus, minus, scale: float = 1.0) -> None:
        """Add ``scale`` x (evaluate(plus) - evaluate(minus)) / 2 to ``source``.

        Where one side has no value (NaN: e.g. a lesion eroded below what can be corrected), the
        other side's change from the value stands for the half-range.
        """
        up = np.asarray(evaluate(plus), dtype=float) - self.values
        down = self.values - np.asarray(evaluate(minus), dtype=float)
        half = np.where(np.isnan(up), down, np.where(np.isnan(down), up, (up + down) / 2.0))
        self.add(source, scale * half)

    def relative(self, source: str, relative_sd: float) -> None:
        """Add a contribution proportional to the results (e.g. a calibration factor scaling all of them)."""
        self.add(source, relative_sd * np.asarray(self.values, dtype=float))

    @property
    def combined(self) -> np.ndarray:
        """Combined standard uncertainty u_c (independent sources in quadrature)."""
        total = np.zeros_like(np.asarray(self.values, dtype=float))
        for contribution in self.contributions.values():
            total = total + contribution**2
        return np.sqrt(total)

    def interval(self, coverage_factor: float = COVERAGE_FACTOR_95) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) = value -+ k u_c."""
        half = coverage_factor * self.combined
        return self.values - half, self.values + half

    def columns(self, index: int, prefix: str, sd: str = "sd") -> dict:
        """Table columns of one result.

        ``<prefix>_<sd>`` (combined standard uncertainty), ``<prefix>_ci95_low/high`` and
        ``<prefix>_<sd>_<source>`` (each source's standard uncertainty).
        """
        low, high = self.interval()
        row = {f"{prefix}_{sd}": float(self.combined[index]), f"{prefix}_ci95_low": float(low[index]),
               f"{prefix}_ci95_high": float(high[index])}
        for source in SOURCES:
            if source in self.contributions:
                row[f"{prefix}_{sd}_{source}"] = float(self.contributions[source][index])
        return row


def covered(low, high, truth) -> np.ndarray:
    """Whether each interval [low, high] contains the true value."""
    return (np.asarray(low) <= np.asarray(truth)) & (np.asarray(truth) <= np.asarray(high))


def coverage_fraction(hits: Sequence[bool]) -> tuple[float, float, float]:
    """(fraction covered, 95 % Wilson score interval low, high) of a sequence of hits."""
    n = len(hits)
    if n == 0:
        return math.nan, math.nan, math.nan
    p = float(np.mean(hits))
    z = COVERAGE_FACTOR_95
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, centre - half, centre + half
