"""CTCAE v5.0 grades of laboratory adverse events, from thresholds kept as cited data.

The grade bounds of every laboratory term (creatinine increased, chronic kidney disease by
eGFR, anemia, platelet / neutrophil / lymphocyte count decreased, ALT / AST / bilirubin
increased, hypoalbuminemia) live in ``luprrt/data/ctcae_v5_laboratory.json`` with the
source and the verbatim CTCAE text; this module only applies them. A bound is absolute (in the
lab's unit), a multiple of the lower or upper limit of normal (LLN, ULN), or a multiple of
the patient's baseline value: CTCAE v5.0 grades ALT, AST and bilirubin against the baseline
when the baseline was abnormal, and creatinine also against the baseline for grades 2-3.

References
----------
Common Terminology Criteria for Adverse Events (CTCAE) Version 5.0. U.S. Department of
Health and Human Services, National Cancer Institute; November 27, 2017.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

CTCAE_FILE = "ctcae_v5_laboratory.json"
REFERENCE_FILE = "adult_reference_intervals.json"
SEXES = ("F", "M")


@dataclass(frozen=True)
class CtcaeTerm:
    """One laboratory adverse-event term: which way is bad and the bound of each grade.

    ``normal_baseline`` / ``abnormal_baseline`` map grade -> (basis, factor) with basis
    "value", "LLN", "ULN" or "baseline"; ``also`` holds bounds applied in addition whatever
    the baseline (creatinine's baseline multiples).
    """

    test: str
    term: str
    direction: str  # "above" (an increase is toxic) or "below"
    normal_baseline: dict[int, tuple[str, float]]
    abnormal_baseline: dict[int, tuple[str, float]] | None
    also: dict[int, tuple[str, float]]
    text: str


def _bounds(entry: dict | None) -> dict[int, tuple[str, float]] | None:
    if entry is None:
        return None
    return {int(grade): (str(basis), float(factor)) for grade, (basis, factor) in entry.items()}


@cache
def _data(name: str) -> dict:
    return json.loads(resources.files("luprrt").joinpath("data", name).read_text(encoding="utf-8"))


@cache
def ctcae_terms() -> dict[str, CtcaeTerm]:
    """The CTCAE v5.0 laboratory terms, keyed by the lab column they grade (e.g. ``platelets_1e9_per_l``)."""
    return {test: CtcaeTerm(test, e["term"], e["direction"], _bounds(e["normal_baseline"]),
                            _bounds(e.get("abnormal_baseline")), _bounds(e.get("also")) or {}, e["text"])
            for test, e in _data(CTCAE_FILE)["terms"].items()}


def ctcae_source() -> str:
    """Citation of the grading thresholds."""
    return _data(CTCAE_FILE)["source"]


def default_reference_interval(test: str, sex: str) -> tuple[float | None, float | None]:
    """Default adult (LLN, ULN) of ``test`` for sex "F" or "M" (cited in the data file); None where open."""
    intervals = _data(REFERENCE_FILE)["intervals"]
    if test not in intervals:
        raise ValueError(f"no reference interval for {test!r}; known tests: {sorted(intervals)}")
    if sex not in SEXES:
        raise ValueError(f"sex must be one of {SEXES} to choose a reference interval, got {sex!r}")
    low, high = intervals[test][sex]
    return low, high


def _bound_value(basis: str, factor: float, lln, uln, baseline) -> np.ndarray:
    reference = {"value": 1.0, "LLN": lln, "ULN": uln, "baseline": baseline}[basis]
    return factor * np.asarray(reference, dtype=float)


def ctcae_grade(test: str, value, *, lln=None, uln=None, baseline=None) -> np.ndarray:
    """CTCAE v5.0 grade (0-4) of laboratory values; arrays broadcast.

    Parameters
    ----------
    test : str
        Lab column, one of :func:`ctcae_terms` (unit in the name, e.g. ``alt_u_per_l``).
    value : float or array
        Measured values in that unit; NaN gives grade -1 (not measured).
    lln, uln : float or array
        Lower / upper limits of normal in the same unit (needed by the grades that use them).
    baseline : float or array, optional
        The patient's pre-treatment value; the baseline-relative bounds apply only when it is
        given (NaN = unknown baseline: the ULN bounds are used).

    Returns
    -------
    numpy.ndarray of int
        Highest grade whose bound the value passes strictly (CTCAE ranges such as
        ">3.0 - 5.0 x ULN" include their upper end in the lower grade), 0 if none.
    """
    terms = ctcae_terms()
    if test not in terms:
        raise ValueError(f"no CTCAE grading for {test!r}; graded tests: {sorted(terms)}")
    term = terms[test]
    values = np.asarray(value, dtype=float)
    nan = np.full(np.shape(values), np.nan)
    lln = nan if lln is None else lln
    uln = nan if uln is None else uln
    base = np.broadcast_to(np.asarray(nan if baseline is None else baseline, dtype=float), np.shape(values))
    beyond = np.greater if term.direction == "above" else np.less
    abnormal = np.zeros(np.shape(values), dtype=bool)
    if term.abnormal_baseline is not None:
        limit = uln if term.direction == "above" else lln
        with np.errstate(invalid="ignore"):
            abnormal = np.isfinite(base) & beyond(base, np.asarray(limit, dtype=float))
    grade = np.zeros(np.broadcast(values, base).shape, dtype=int)
    with np.errstate(invalid="ignore"):
        for bounds, applies in ((term.normal_baseline, ~abnormal), (term.abnormal_baseline, abnormal),
                                (term.also, np.isfinite(base))):
            for g, (basis, factor) in (bounds or {}).items():
                passed = beyond(values, _bound_value(basis, factor, lln, uln, base)) & applies
                grade = np.where(passed, np.maximum(grade, g), grade)
    return np.where(np.isnan(values), -1, grade)
