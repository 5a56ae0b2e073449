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
(coverage factor of a normal distribution, GUM section 6.3), its two sides combined apart where
the calculation responds unevenly (:class:`UncertaintyBudget`).
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
    """Standard-uncertainty contributions of each source to a vector of results (same units as the results).

    Each source keeps the results' spread upwards and downwards apart: a nonlinear calculation (the
    recovery correction of a lesion whose outline moves in by a voxel rises more than it falls when
    the outline moves out) gets an asymmetric interval, value - k u_down .. value + k u_up, with
    the sides combined source by source (the semi-ranges of a nonlinear model, GUM section 4.3.8).
    """

    values: np.ndarray
    up: dict[str, np.ndarray] = field(default_factory=dict)
    down: dict[str, np.ndarray] = field(default_factory=dict)

    def add_sided(self, source: str, up, down) -> None:
        """Add independent first-order changes upwards and downwards (magnitudes) to ``source``."""
        zero = np.zeros_like(np.asarray(self.values, dtype=float))
        for store, change in ((self.up, up), (self.down, down)):
            change = np.nan_to_num(np.asarray(change, dtype=float))
            store[source] = np.sqrt(store.get(source, zero) ** 2 + change**2)

    def add(self, source: str, change) -> None:
        """Add one independent first-order change of the results, the same both ways."""
        self.add_sided(source, np.abs(change), np.abs(change))

    def central(self, source: str, evaluate: Callable[..., np.ndarray], plus, minus, scale: float = 1.0) -> None:
        """Add the results' changes between ``minus`` and ``plus`` inputs (times ``scale``) to ``source``.

        The rise above the value (the larger of the two sides' rises) counts upwards, the fall below
        it downwards; a linear calculation gets half the range both ways. Where one side has no
        value (NaN: e.g. a lesion eroded below what can be corrected) it mirrors the other.
        """
        first = np.asarray(evaluate(plus), dtype=float) - self.values
        second = np.asarray(evaluate(minus), dtype=float) - self.values
        first = np.where(np.isnan(first), -second, first)
        second = np.where(np.isnan(second), -first, second)
        rise = np.maximum(np.maximum(first, second), 0.0)
        fall = np.maximum(np.maximum(-first, -second), 0.0)
        self.add_sided(source, scale * rise, scale * fall)

    def relative(self, source: str, relative_sd: float) -> None:
        """Add a contribution proportional to the results (e.g. a calibration factor scaling all of them)."""
        self.add(source, relative_sd * np.asarray(self.values, dtype=float))

    @property
    def contributions(self) -> dict[str, np.ndarray]:
        """Each source's standard uncertainty (root mean square of its two sides)."""
        return {source: np.sqrt((self.up[source] ** 2 + self.down[source] ** 2) / 2.0) for source in self.up}

    @property
    def combined(self) -> np.ndarray:
        """Combined standard uncertainty u_c (independent sources in quadrature, both sides averaged)."""
        total = np.zeros_like(np.asarray(self.values, dtype=float))
        for contribution in self.contributions.values():
            total = total + contribution**2
        return np.sqrt(total)

    def interval(self, coverage_factor: float = COVERAGE_FACTOR_95) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) = value - k u_down, value + k u_up."""
        zero = np.zeros_like(np.asarray(self.values, dtype=float))
        up = np.sqrt(sum((c**2 for c in self.up.values()), zero))
        down = np.sqrt(sum((c**2 for c in self.down.values()), zero))
        return self.values - coverage_factor * down, self.values + coverage_factor * up

    def columns(self, index: int, prefix: str, sd: str = "sd") -> dict:
        """Table columns of one result.

        ``<prefix>_<sd>`` (combined standard uncertainty), ``<prefix>_ci95_low/high`` (the 95 %
        interval, asymmetric where the calculation is) and ``<prefix>_<sd>_<source>`` (each source's
        standard uncertainty).
        """
        low, high = self.interval()
        row = {f"{prefix}_{sd}": float(self.combined[index]), f"{prefix}_ci95_low": float(low[index]),
               f"{prefix}_ci95_high": float(high[index])}
        contributions = self.contributions
        for source in SOURCES:
            if source in contributions:
                row[f"{prefix}_{sd}_{source}"] = float(contributions[source][index])
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
