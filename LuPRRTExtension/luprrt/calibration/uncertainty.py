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
quadrature into the combined standard uncertainty u_c, its two sides combined apart where the
calculation responds unevenly (:class:`UncertaintyBudget`).

The 95 % interval is not value +- 1.96 u_c when a bounded source dominates: the result's error is
then a rectangular distribution U(-a, a) (a = sqrt(3) u of that source, :data:`RECTANGULAR_SOURCES`)
convolved with the normal N(0, s^2) of the other sources, and its 95 % half-width goes from
1.96 s (a = 0) to 0.95 a = 1.645 u_c (s = 0) (GUM section G.2.3 and the note to G.6.5; JCGM
101:2008, GUM Supplement 1, propagates the distributions themselves).
:func:`coverage_half_width_95` solves that convolution's distribution function exactly; with
1.96 u_c a budget dominated by the +-1 voxel term would cover ~100 %, not 95 %.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr

COVERAGE_FACTOR_95 = 1.959963984540054
SOURCES = ("counting", "calibration", "recovery", "segmentation")
# Sources whose contributions are bounded (rectangular, +-a = +-sqrt(3) u): the segmentation
# boundary known to +-1 voxel (:mod:`.boundary`).
RECTANGULAR_SOURCES = ("segmentation",)
# Below this ratio a / s the closed form loses digits to cancellation (G(z + r) - G(z - r) with r
# small): the second-order expansion in a / s is used instead (its error ~ (a / s)^4).
_SMALL_RECTANGLE = 1e-3


def _normal_pdf(z: float) -> float:
    """Standard normal density phi(z)."""
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _normal_integral(z: float) -> float:
    """G(z) = integral of the standard normal CDF from -inf to z = z Phi(z) + phi(z)."""
    return z * float(ndtr(z)) + _normal_pdf(z)


def _uniform_plus_normal_cdf(x: float, a: float, s: float) -> float:
    """P(U + N <= x) for U ~ U(-a, a), N ~ N(0, s^2), a > 0, s > 0.

    The mean of Phi((x - t) / s) over t in (-a, a): s / (2 a) [G((x + a) / s) - G((x - a) / s)].
    """
    ratio = a / s
    z = x / s
    if ratio < _SMALL_RECTANGLE:
        # Phi(z - t/s) to second order in t, averaged: E[t^2] = a^2 / 3, Phi'' = -z phi.
        return float(ndtr(z)) - ratio**2 / 6.0 * z * _normal_pdf(z)
    return (_normal_integral(z + ratio) - _normal_integral(z - ratio)) / (2.0 * ratio)


def _half_width(u_rectangular: float, s: float) -> float:
    """95 % half-width of U(-a, a) + N(0, s^2), a = sqrt(3) ``u_rectangular`` (both >= 0, finite)."""
    scale = max(u_rectangular, s)
    if scale == 0.0:
        return 0.0
    # Solved at unit scale: the same tolerances for every unit, no overflow of sqrt(3) u.
    a, s = math.sqrt(3.0) * (u_rectangular / scale), s / scale
    if s == 0.0:
        return scale * 0.95 * a
    if a == 0.0:
        return scale * COVERAGE_FACTOR_95 * s
    # P(U + N <= a + 1.96 s) >= P(N <= 1.96 s) = 0.975: the root lies in [0, a + 2 s].
    root = brentq(lambda x: _uniform_plus_normal_cdf(x, a, s) - 0.975, 0.0, a + 2.0 * s, xtol=1e-14, rtol=1e-15)
    return scale * root


def coverage_half_width_95(u_rectangular, u_normal) -> np.ndarray:
    """Half-width of the symmetric 95 % interval of a rectangular plus a normal error.

    The error is U(-a, a) + N(0, s^2) with a = sqrt(3) ``u_rectangular`` (a bounded source's
    standard uncertainty) and s = ``u_normal`` (the other sources in quadrature); the half-width h
    solves P(|U + N| <= h) = 0.95 with the closed-form distribution function of the sum
    (the mean of the normal CDF over the rectangle, :func:`_uniform_plus_normal_cdf`) by Brent's
    method. Limits: 1.96 s without the rectangle, 0.95 a = 1.645 u_rectangular without the normal
    part. Non-finite inputs give NaN.

    Parameters
    ----------
    u_rectangular, u_normal : array_like
        Standard uncertainties (>= 0, same units), broadcast together.

    Returns
    -------
    numpy.ndarray
        The half-widths, in the inputs' units (a 0-d array for scalar inputs).
    """
    u_rectangular, u_normal = np.broadcast_arrays(np.abs(np.asarray(u_rectangular, dtype=float)),
                                                  np.abs(np.asarray(u_normal, dtype=float)))
    out = np.full(u_rectangular.shape, np.nan)
    for index in np.ndindex(u_rectangular.shape):  # tens of results: one root each
        u, s = u_rectangular[index], u_normal[index]
        if math.isfinite(u) and math.isfinite(s):
            out[index] = _half_width(u, s)
    return out


@dataclass
class UncertaintyBudget:
    """Standard-uncertainty contributions of each source to a vector of results (same units as the results).

    Each source keeps the results' spread upwards and downwards apart: a nonlinear calculation (the
    recovery correction of a lesion whose outline moves in by a voxel rises more than it falls when
    the outline moves out) gets an asymmetric interval, value - h_down .. value + h_up, with
    the sides combined source by source (the semi-ranges of a nonlinear model, GUM section 4.3.8).

    Each side's 95 % half-width h is that of a rectangular plus a normal error
    (:func:`coverage_half_width_95`): the rectangle is the largest single contribution of a
    :data:`RECTANGULAR_SOURCES` source on that side (one outline move), everything else on that
    side (other sources, other outlines' moves) is the normal part. Several independent bounded
    contributions together are closer to normal than one rectangle of their combined variance
    (two equal ones make a triangle: 95 % half-width 1.90 u, not 1.645 u), and keeping only the
    largest as a rectangle errs on the wide side (1.92 u for the triangle).
    """

    values: np.ndarray
    up: dict[str, np.ndarray] = field(default_factory=dict)
    down: dict[str, np.ndarray] = field(default_factory=dict)
    # Largest single contribution of each rectangular source, per side.
    rectangular_up: dict[str, np.ndarray] = field(default_factory=dict)
    rectangular_down: dict[str, np.ndarray] = field(default_factory=dict)

    def add_sided(self, source: str, up, down) -> None:
        """Add independent first-order changes upwards and downwards (magnitudes) to ``source``."""
        zero = np.zeros_like(np.asarray(self.values, dtype=float))
        for store, largest, change in ((self.up, self.rectangular_up, up), (self.down, self.rectangular_down, down)):
            change = np.nan_to_num(np.asarray(change, dtype=float))
            store[source] = np.sqrt(store.get(source, zero) ** 2 + change**2)
            if source in RECTANGULAR_SOURCES:
                largest[source] = np.maximum(largest.get(source, zero), np.abs(change))

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

    def side_parts(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        """(rectangular, normal) standard uncertainties of one side (``"up"`` or ``"down"``) of each result.

        Rectangular: the largest single contribution of a rectangular source; normal: all the
        rest in quadrature.
        """
        store, largest = (self.up, self.rectangular_up) if side == "up" else (self.down, self.rectangular_down)
        zero = np.zeros_like(np.asarray(self.values, dtype=float))
        total = np.sqrt(sum((c**2 for c in store.values()), zero))
        rectangular = np.maximum.reduce([zero, *largest.values()])
        return rectangular, np.sqrt(np.maximum(total**2 - rectangular**2, 0.0))

    def interval(self, coverage_factor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(low, high): the 95 % interval, value - h_down .. value + h_up.

        h of each side from its rectangular and normal parts (:meth:`side_parts`,
        :func:`coverage_half_width_95`); with a ``coverage_factor`` k instead h = k u of that side
        (a normal distribution's k, e.g. 2).
        """
        values = np.asarray(self.values, dtype=float)
        return values - self._half_width("down", coverage_factor), values + self._half_width("up", coverage_factor)

    def _half_width(self, side: str, coverage_factor: float | None, index=slice(None)) -> np.ndarray:
        """One side's half-width of the interval of the results ``index``."""
        rectangular, normal = (part[index] for part in self.side_parts(side))
        if coverage_factor is not None:
            return coverage_factor * np.hypot(rectangular, normal)
        return coverage_half_width_95(rectangular, normal)

    def columns(self, index: int, prefix: str, sd: str = "sd") -> dict:
        """Table columns of one result.

        ``<prefix>_<sd>`` (combined standard uncertainty), ``<prefix>_ci95_low/high`` (the 95 %
        interval, asymmetric where the calculation is) and ``<prefix>_<sd>_<source>`` (each source's
        standard uncertainty).
        """
        value = float(np.asarray(self.values, dtype=float)[index])
        row = {f"{prefix}_{sd}": float(self.combined[index]),
               f"{prefix}_ci95_low": value - float(self._half_width("down", None, index)),
               f"{prefix}_ci95_high": value + float(self._half_width("up", None, index))}
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
