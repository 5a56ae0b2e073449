"""Result tables as CSV: plain values, every digit of a float, unit-named columns, no silent overwrite.

The expected files are written out by hand, byte for byte.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pytest

from luprrt.tables import as_rows, read_rows_csv, write_rows_csv


class Route(enum.Enum):
    IA = "IA"
    IV = "IV"


@dataclass
class LesionDose:
    lesion_id: str
    route: Route
    scan_date: date
    dose_gy: float
    volume_ml: float | None


def test_as_rows_turns_dataclasses_enums_and_dates_into_plain_values():
    rows = as_rows([
        LesionDose("L01", Route.IA, date(2024, 3, 5), 12.5, None),
        {"lesion_id": "L02", "route": Route.IV, "acquired": datetime(2024, 3, 5, 10, 30, 15), "n_voxels": 140},
    ])
    assert rows == [
        {"lesion_id": "L01", "route": "IA", "scan_date": "2024-03-05", "dose_gy": 12.5, "volume_ml": None},
        {"lesion_id": "L02", "route": "IV", "acquired": "2024-03-05T10:30:15", "n_voxels": 140},
    ]
    record = {"route": Route.IA}
    as_rows([record])
    assert record == {"route": Route.IA}  # the input is not modified


def test_csv_keeps_every_digit_columns_in_first_seen_order_and_empty_cells(tmp_path):
    rows = [
        {"lesion_id": "L01", "route": Route.IA, "dose_gy": 0.1 + 0.2, "volume_ml": None},
        {"lesion_id": "L02", "route": "IV", "scan_date": date(2024, 3, 5), "dose_gy": np.float64(1) / 3,
         "volume_ml": 4.0, "n_voxels": np.int64(140), "measurable": True},
    ]
    path = write_rows_csv(rows, tmp_path / "nested" / "dose.csv")
    assert path == tmp_path / "nested" / "dose.csv"
    assert path.read_bytes() == (
        b"lesion_id,route,dose_gy,volume_ml,scan_date,n_voxels,measurable\n"
        b"L01,IA,0.30000000000000004,,,,\n"
        b"L02,IV,0.3333333333333333,4.0,2024-03-05,140,True\n")
    back = read_rows_csv(path)
    assert [float(row["dose_gy"]) for row in back] == [0.1 + 0.2, 1 / 3]
    assert back[0]["volume_ml"] == "" and back[1]["scan_date"] == "2024-03-05"


def test_csv_is_utf8_and_reads_back_with_a_byte_order_mark(tmp_path):
    path = write_rows_csv([{"adc_mm2_per_s": 0.0012, "note": "µ and ² stay"}], tmp_path / "adc.csv")
    assert path.read_text(encoding="utf-8") == "adc_mm2_per_s,note\n0.0012,µ and ² stay\n"
    spreadsheet = tmp_path / "from_spreadsheet.csv"
    spreadsheet.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # as spreadsheet programs save UTF-8
    assert read_rows_csv(spreadsheet) == [{"adc_mm2_per_s": "0.0012", "note": "µ and ² stay"}]


def test_existing_tables_are_never_silently_replaced(tmp_path):
    path = write_rows_csv([{"kidney_dose_gy": 3.25}], tmp_path / "limits.csv")
    with pytest.raises(FileExistsError, match=r"output file exists: .*limits\.csv; pass overwrite=True to replace it"):
        write_rows_csv([{"kidney_dose_gy": 9.0}], path)
    assert path.read_text() == "kidney_dose_gy\n3.25\n"
    write_rows_csv([{"kidney_dose_gy": 9.0}], path, overwrite=True)
    assert path.read_text() == "kidney_dose_gy\n9.0\n"
    with pytest.raises(ValueError, match=r"no rows to write to .*empty\.csv"):
        write_rows_csv([], tmp_path / "empty.csv")
    assert not (tmp_path / "empty.csv").exists()
    with pytest.raises(FileNotFoundError, match=r"table not found: .*absent\.csv"):
        read_rows_csv(tmp_path / "absent.csv")
