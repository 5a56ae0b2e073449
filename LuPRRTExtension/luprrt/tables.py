"""Tidy result tables: rows as dicts whose column names carry their units."""

from __future__ import annotations

import csv
import dataclasses
import enum
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

from .errors import output_exists


def as_rows(records: Iterable) -> list[dict]:
    """Dataclass instances (or dicts) -> dicts with enums and dates turned into plain values."""
    rows = []
    for record in records:
        row = dataclasses.asdict(record) if dataclasses.is_dataclass(record) else dict(record)
        rows.append({key: _plain(value) for key, value in row.items()})
    return rows


def _plain(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def write_rows_csv(rows: Sequence[dict], path: str | Path, *, overwrite: bool = False) -> Path:
    """Write rows (dicts) as CSV, columns in first-seen order; refuses to overwrite unless asked.

    Floats (numpy float64 too) are written with ``repr`` so that no digit is lost; None becomes
    an empty cell.
    """
    path = Path(path)
    if not rows:
        raise ValueError(f"no rows to write to {path}")
    if path.exists() and not overwrite:
        raise output_exists(path)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else (repr(float(v)) if isinstance(v, float) else _plain(v))
                             for k, v in row.items()})
    return path


def read_rows_csv(path: str | Path) -> list[dict[str, str]]:
    """Read a CSV written by :func:`write_rows_csv` (values stay strings)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))
