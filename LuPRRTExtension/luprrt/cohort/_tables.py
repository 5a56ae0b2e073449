"""Checks shared by the cohort functions: required columns, positive values, binary outcomes."""

from __future__ import annotations

import numpy as np
import pandas as pd


def require_columns(table: pd.DataFrame, columns, what: str = "table") -> None:
    """Raise ValueError naming the missing columns (and what the table has) if any are absent."""
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(table).__name__}")
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(table.columns)}")


def require_complete(table: pd.DataFrame, columns, what: str = "table") -> None:
    """Raise ValueError naming each column that holds missing values (complete cases only)."""
    counts = table[list(columns)].isna().sum()
    bad = counts[counts > 0]
    if not bad.empty:
        detail = ", ".join(f"{name!r}: {int(n)} missing" for name, n in bad.items())
        raise ValueError(f"{what} has missing values ({detail}); drop or impute them first")


def log_of_positive(values: pd.Series, column: str) -> np.ndarray:
    """Natural log of a column that must be positive and finite (T/N, dose, uptake)."""
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(array) | (array <= 0.0)
    if bad.any():
        rows = list(values.index[bad][:5])
        raise ValueError(
            f"column {column!r} must be positive and finite for a log-scale analysis; "
            f"{int(bad.sum())} bad row(s), e.g. index {rows} with values {values[bad].head(5).tolist()}"
        )
    return np.log(array)


def binary_outcome(values, name: str = "outcome") -> np.ndarray:
    """Return a 0/1 (or boolean) outcome as a boolean array; anything else raises ValueError."""
    array = np.asarray(values)
    if array.dtype == bool:
        return array
    numeric = pd.to_numeric(pd.Series(array), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(numeric, (0.0, 1.0))
    if bad.any():
        found = sorted({repr(v) for v in array[bad].tolist()})[:5]
        raise ValueError(f"{name} must be binary (0/1 or bool); found values {found}")
    return numeric == 1.0
