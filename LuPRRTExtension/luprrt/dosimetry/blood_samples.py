"""Blood (and urine) activity samples of treatment cycles, read from a CSV and checked.

Columns (header names carry the units; one row per sample, any order of columns):

=========================================  ========  ==================================================
``time_h``                                 required  hours after this cycle's administration, > 0
``blood_activity_concentration_kBq_per_mL`` required  whole-blood activity concentration at ``time_h``
                                                      (kBq/mL, not decay-corrected), >= 0
``cycle``                                  optional  treatment cycle (1, 2, ...); without it the file
                                                      holds one cycle's samples
``urine_cumulative_excreted_percent``      optional  urinary excretion from injection to ``time_h``, %
                                                      of the injected activity decay-corrected to the
                                                      injection; rises with time, 0-100
=========================================  ========  ==================================================

Within a cycle the sample times must increase strictly. Every problem is one line naming the
file, the row and the fix; the file is never modified.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import fix

TIME_COLUMN = "time_h"
BLOOD_COLUMN = "blood_activity_concentration_kBq_per_mL"
CYCLE_COLUMN = "cycle"
URINE_COLUMN = "urine_cumulative_excreted_percent"
REQUIRED_COLUMNS = (TIME_COLUMN, BLOOD_COLUMN)


@dataclass(frozen=True)
class BloodSamples:
    """One cycle's samples: times (h), blood concentrations (kBq/mL), optional cumulative urine excretion (%)."""

    times_h: np.ndarray
    blood_kbq_per_ml: np.ndarray
    urine_cumulative_excreted_percent: np.ndarray | None
    source: str = ""


def read_blood_samples(path: str | Path) -> dict[int | None, BloodSamples]:
    """Samples per cycle (key None when the file has no ``cycle`` column), from ``path``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Missing or mis-united column, a value that is not a number or out of range, or times that
        do not increase within a cycle (one line naming file, row and fix).
    """
    path = Path(path)
    hint = fix("blood_samples", "FILE")
    if not path.is_file():
        raise FileNotFoundError(f"blood samples file not found: {path}" + (f"; {hint}" if hint else ""))
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        other_units = [h for h in header if h.lower().startswith("blood_activity_concentration") and h != BLOOD_COLUMN]
        why = (f" ({other_units[0]!r} found: convert it to kBq/mL and name the column {BLOOD_COLUMN})"
               if other_units else "")
        raise ValueError(f"blood samples {path}: missing column(s) {', '.join(missing)}{why}; the header must name "
                         f"{', '.join(REQUIRED_COLUMNS)} (optional {CYCLE_COLUMN}, {URINE_COLUMN})")
    if not rows:
        raise ValueError(f"blood samples {path}: no sample rows below the header")
    has_cycle, has_urine = CYCLE_COLUMN in header, URINE_COLUMN in header
    grouped: dict[int | None, list[tuple[float, float, float]]] = {}
    for line, row in enumerate(rows, start=2):
        t = _number(path, line, row, TIME_COLUMN, lambda v: v > 0, "> 0 h after the administration")
        c = _number(path, line, row, BLOOD_COLUMN, lambda v: v >= 0, ">= 0 kBq/mL")
        u = (_number(path, line, row, URINE_COLUMN, lambda v: 0 <= v <= 100, "a percentage 0-100")
             if has_urine and row.get(URINE_COLUMN) else math.nan)
        cycle = int(_number(path, line, row, CYCLE_COLUMN, lambda v: v >= 1 and v == int(v), "a cycle number 1, 2, ..."))\
            if has_cycle else None
        grouped.setdefault(cycle, []).append((t, c, u))
    out = {}
    for cycle, samples in grouped.items():
        t, c, u = (np.array(column) for column in zip(*samples, strict=True))
        where = f" cycle {cycle}" if cycle is not None else ""
        if np.any(np.diff(t) <= 0):
            raise ValueError(f"blood samples {path}{where}: times must increase strictly, got {t.tolist()} h; sort the "
                             f"rows by {TIME_COLUMN}")
        if t.size < 2:
            raise ValueError(f"blood samples {path}{where}: {t.size} sample; blood clearance needs at least 2 (better "
                             f"6 or more, from minutes to days)")
        urine = None
        if has_urine and np.any(np.isfinite(u)):
            if not np.all(np.isfinite(u)) or np.any(np.diff(u) < 0):
                raise ValueError(f"blood samples {path}{where}: {URINE_COLUMN} must be given on every row and rise with "
                                 f"time, got {u.tolist()} %")
            urine = u
        out[cycle] = BloodSamples(t, c, urine, str(path))
    return out


def _number(path, line, row, column, valid, expected) -> float:
    text = row.get(column, "")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and valid(value)):
        raise ValueError(f"blood samples {path} row {line}: {column} {text!r} is not {expected}; correct the value")
    return value
