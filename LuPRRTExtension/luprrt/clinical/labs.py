"""Clinical data in: per-patient laboratory values over time and baseline characteristics.

Two tidy CSV files, one row per observation, units in the column names (the layout is also
documented in ``luprrt/data/example_labs.csv`` and ``example_characteristics.csv``):

``labs.csv``, one row per patient and blood-sampling date; empty cells are tests not done:

==============================  ==========================================================
``patient_id``                  as in the imaging manifest
``date``                        sampling date, YYYY-MM-DD
``creatinine_umol_per_l``       serum creatinine, µmol/L
``egfr_ml_per_min_1_73m2``      estimated GFR, mL/min/1.73 m²
``haemoglobin_g_per_l``         haemoglobin, g/L
``platelets_1e9_per_l``         platelet count, 10⁹/L
``neutrophils_1e9_per_l``       absolute neutrophil count, 10⁹/L
``lymphocytes_1e9_per_l``       absolute lymphocyte count, 10⁹/L
``alt_u_per_l``, ``ast_u_per_l`` alanine / aspartate aminotransferase, U/L
``bilirubin_umol_per_l``        total bilirubin, µmol/L
``albumin_g_per_l``             serum albumin, g/L
``lln_<test>``, ``uln_<test>``  optional: the laboratory's reference limits (override the defaults)
==============================  ==========================================================

``characteristics.csv``, one row per patient: ``patient_id``, ``age_years``, ``sex`` (F/M),
``weight_kg``, ``primary_site`` (e.g. small intestine, pancreas), ``grade`` (WHO G1/G2/G3),
``ki67_pct``, ``prior_therapies`` (";"-separated, may be empty) and optionally
``kidney_risk_factors`` (yes/no: hypertension, diabetes, ...; selects the 28 Gy kidney BED limit).

Reading never modifies the file; every problem is one line naming the file, the row and the fix.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .ctcae import SEXES, ctcae_grade, ctcae_terms, default_reference_interval

# Lab column -> (name for readers, unit, plausible range in that unit). Values outside the range
# are refused as a likely unit error (e.g. haemoglobin in g/dL or mmol/L instead of g/L).
LAB_TESTS: dict[str, tuple[str, str, tuple[float, float]]] = {
    "creatinine_umol_per_l": ("Creatinine", "µmol/L", (10.0, 3000.0)),
    "egfr_ml_per_min_1_73m2": ("eGFR", "mL/min/1.73 m²", (1.0, 200.0)),
    "haemoglobin_g_per_l": ("Haemoglobin", "g/L", (30.0, 250.0)),
    "platelets_1e9_per_l": ("Platelets", "10⁹/L", (1.0, 2000.0)),
    "neutrophils_1e9_per_l": ("Neutrophils", "10⁹/L", (0.0, 100.0)),
    "lymphocytes_1e9_per_l": ("Lymphocytes", "10⁹/L", (0.0, 100.0)),
    "alt_u_per_l": ("ALT", "U/L", (1.0, 10000.0)),
    "ast_u_per_l": ("AST", "U/L", (1.0, 10000.0)),
    "bilirubin_umol_per_l": ("Bilirubin", "µmol/L", (1.0, 1000.0)),
    "albumin_g_per_l": ("Albumin", "g/L", (5.0, 70.0)),
}
CHARACTERISTIC_COLUMNS = ("patient_id", "age_years", "sex", "weight_kg", "primary_site", "grade", "ki67_pct",
                          "prior_therapies")
WHO_GRADES = ("G1", "G2", "G3")


@dataclass(frozen=True)
class LabValue:
    """One graded laboratory value (long format: one per patient, date and test)."""

    patient_id: str
    date: date
    test: str
    value: float
    lln: float | None
    uln: float | None
    baseline: float | None
    grade: int


def _number(text: str, where: str, column: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {column} = {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: {column} = {text!r} must be finite")
    return value


def _date(text: str, where: str) -> date:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        raise ValueError(f"{where}: date {text!r} must be YYYY-MM-DD") from None


def _rows(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[tuple[str, dict]]]:
    if not path.is_file():
        raise FileNotFoundError(f"clinical table not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or ()]
        missing = [c for c in required if c not in columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; see luprrt.clinical.labs for the layout")
        rows = [(f"{path} line {n}", {k.strip(): v for k, v in row.items() if k is not None})
                for n, row in enumerate(reader, start=2)]
    if not rows:
        raise ValueError(f"{path}: no data rows")
    return columns, rows


def read_labs(path: str | Path) -> list[dict]:
    """Read and validate a labs CSV; returns one dict per row (dates as dates, values as floats or None).

    Raises
    ------
    ValueError
        Unknown columns, a missing patient id, a bad date, a non-numeric or implausible value
        (likely a unit mix-up), or one patient sampled twice on one date.
    """
    path = Path(path)
    columns, rows = _rows(path, ("patient_id", "date"))
    reference = {f"{kind}_{test}" for test in LAB_TESTS for kind in ("lln", "uln")}
    unknown = [c for c in columns if c not in {"patient_id", "date", *LAB_TESTS, *reference}]
    if unknown:
        raise ValueError(f"{path}: unknown column(s) {unknown}; lab columns are {list(LAB_TESTS)} "
                         "(units in the name), plus optional lln_<test>/uln_<test>")
    if not any(c in LAB_TESTS for c in columns):
        raise ValueError(f"{path}: no laboratory column; expected some of {list(LAB_TESTS)}")
    out, seen = [], set()
    for where, row in rows:
        patient = (row.get("patient_id") or "").strip()
        if not patient:
            raise ValueError(f"{where}: empty patient_id")
        record = {"patient_id": patient, "date": _date(row.get("date"), where)}
        if (patient, record["date"]) in seen:
            raise ValueError(f"{where}: patient {patient} has two rows for {record['date']}; "
                             "merge them into one row per sampling date")
        seen.add((patient, record["date"]))
        for column in (c for c in columns if c not in ("patient_id", "date")):
            value = _number(row.get(column), where, column)
            test = column.split("_", 1)[1] if column.startswith(("lln_", "uln_")) else column
            low, high = LAB_TESTS[test][2]
            if value is not None and not low <= value <= high:
                raise ValueError(f"{where}: {column} = {value:g} is outside {low:g}-{high:g} "
                                 f"{LAB_TESTS[test][1]}; check the unit (the column expects {LAB_TESTS[test][1]})")
            record[column] = value
        out.append(record)
    return out


def read_characteristics(path: str | Path) -> list[dict]:
    """Read and validate a baseline-characteristics CSV (one row per patient)."""
    path = Path(path)
    _, rows = _rows(path, CHARACTERISTIC_COLUMNS)
    out, seen = [], set()
    for where, row in rows:
        patient = (row.get("patient_id") or "").strip()
        if not patient:
            raise ValueError(f"{where}: empty patient_id")
        if patient in seen:
            raise ValueError(f"{where}: patient {patient} listed twice; one row per patient")
        seen.add(patient)
        sex = (row.get("sex") or "").strip().upper()
        if sex not in SEXES:
            raise ValueError(f"{where}: sex {row.get('sex')!r} must be F or M")
        grade = (row.get("grade") or "").strip().upper()
        if grade not in WHO_GRADES:
            raise ValueError(f"{where}: grade {row.get('grade')!r} must be one of {WHO_GRADES} (WHO NET grade)")
        record = {"patient_id": patient, "sex": sex, "grade": grade,
                  "primary_site": (row.get("primary_site") or "").strip() or "unknown",
                  "prior_therapies": [t.strip() for t in (row.get("prior_therapies") or "").split(";")
                                      if t.strip()]}
        for column, (low, high) in (("age_years", (18.0, 110.0)), ("weight_kg", (25.0, 300.0)),
                                    ("ki67_pct", (0.0, 100.0))):
            value = _number(row.get(column), where, column)
            if value is None or not low <= value <= high:
                raise ValueError(f"{where}: {column} = {row.get(column)!r} must be a number in {low:g}-{high:g}")
            record[column] = value
        risk = (row.get("kidney_risk_factors") or "").strip().lower()
        if risk not in ("", "yes", "no", "1", "0", "true", "false"):
            raise ValueError(f"{where}: kidney_risk_factors {risk!r} must be yes or no")
        record["kidney_risk_factors"] = risk in ("yes", "1", "true")
        out.append(record)
    return out


def baseline_values(labs: list[dict], first_administration: dict[str, date]) -> dict[tuple[str, str], float]:
    """Per (patient, test): the last value sampled on or before the patient's first administration."""
    baseline: dict[tuple[str, str], tuple[date, float]] = {}
    for row in labs:
        start = first_administration.get(row["patient_id"])
        if start is None or row["date"] > start:
            continue
        for test in LAB_TESTS:
            value = row.get(test)
            key = (row["patient_id"], test)
            if value is not None and (key not in baseline or row["date"] >= baseline[key][0]):
                baseline[key] = (row["date"], value)
    return {key: value for key, (_, value) in baseline.items()}


def grade_labs(labs: list[dict], sex: dict[str, str], first_administration: dict[str, date]) -> list[LabValue]:
    """CTCAE v5.0 grade of every laboratory value, baseline-relative where CTCAE says so.

    Parameters
    ----------
    labs : rows from :func:`read_labs`
    sex : patient_id -> "F"/"M" (chooses the default reference interval when the row has none)
    first_administration : patient_id -> date of the first cycle (the baseline is the last
        value on or before it)
    """
    missing = sorted({row["patient_id"] for row in labs} - set(sex))
    if missing:
        raise ValueError(f"patients {missing[:5]} have labs but no sex in the characteristics table "
                         "(needed for reference intervals)")
    baseline = baseline_values(labs, first_administration)
    graded = []
    for row in labs:
        for test in ctcae_terms():
            value = row.get(test)
            if value is None:
                continue
            default_low, default_high = default_reference_interval(test, sex[row["patient_id"]])
            low = row.get(f"lln_{test}") or default_low
            high = row.get(f"uln_{test}") or default_high
            base = baseline.get((row["patient_id"], test))
            grade = int(ctcae_grade(test, value, lln=low, uln=high, baseline=base))
            graded.append(LabValue(row["patient_id"], row["date"], test, value, low, high, base, grade))
    return graded
