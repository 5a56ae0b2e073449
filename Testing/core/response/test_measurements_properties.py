"""Property-based test of the RECIST measurements CSV (hypothesis): any table ends in results or one clear line.

Tables are drawn from plausible and broken cells alike (dates out of range, diameters that
are negative, NaN or text, unknown lesion types, missing columns, ragged rows). ``luprrt
recist`` must exit 0, or exit 2 with exactly one stderr line; never 1 (a bug) or a traceback,
and the CSV must be byte-identical afterwards.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from luprrt.cli import main

COLUMNS = ["patient_id", "lesion_id", "organ", "is_lymph_node", "date", "longest_diameter_mm", "short_axis_mm",
           "lesion_type", "non_target_status", "too_small_to_measure"]

diameters = st.one_of(st.floats(min_value=0, max_value=200).map(lambda v: f"{v:.1f}"),
                      st.sampled_from(["", "TSTM", "-3", "nan", "inf", "1e400", "12mm", "0"]))
cells = {
    "patient_id": st.sampled_from(["P1", "P2", "P3", ""]),
    "lesion_id": st.sampled_from(["L1", "L2", "L3", "N1", ""]),
    "organ": st.sampled_from(["liver", "lung", "lymph node", ""]),
    "is_lymph_node": st.sampled_from(["false", "true", "yes", "0", "maybe", ""]),
    "date": st.one_of(st.dates().map(str), st.sampled_from(["2024-02-30", "08/01/2024", "", "2024-1-8"])),
    "longest_diameter_mm": diameters,
    "short_axis_mm": diameters,
    "lesion_type": st.sampled_from(["target", "target", "non_target", "new", "tgt", ""]),
    "non_target_status": st.sampled_from(["", "present", "absent", "progression", "not_evaluated", "gone"]),
    "too_small_to_measure": st.sampled_from(["", "false", "true", "2"]),
}
rows = st.lists(st.fixed_dictionaries(cells), min_size=0, max_size=12)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(table=rows, dropped=st.sets(st.sampled_from(COLUMNS), max_size=2), ragged=st.booleans())
def test_any_measurements_table_is_assessed_or_refused_in_one_line(capsys, table, dropped, ragged):
    columns = [c for c in COLUMNS if c not in dropped]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for k, row in enumerate(table):
        values = [row[c] for c in columns]
        writer.writerow(values + (["extra"] if ragged and k == 0 else []))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "m.csv"
        path.write_text(text.getvalue(), encoding="utf-8")
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        status = main(["recist", str(path), "--out", str(Path(scratch) / "out"), "--no-figures"])
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()
               and not line.startswith("WARNING ")]
        assert status in (0, 2), err
        if status == 2:
            assert len(err) == 1 and err[0].startswith("luprrt recist: error: "), err
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
