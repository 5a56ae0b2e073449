"""Blood-based marrow dose of a cycle: samples per cycle, whole-body TIA routes, organ sources, marrow.csv rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from luprrt.dosimetry.blood_samples import BloodSamples
from luprrt.dosimetry.marrow import marrow_s_values
from luprrt.physics import LU177_DECAY_CONSTANT_PER_H
from luprrt.workflows.dose_marrow import (
    MARROW_COLUMNS,
    MARROW_METHOD,
    cycle_marrow_dose,
    marrow_rows,
    resolve_blood_samples,
)

INJECTED_MBQ = 7400.0
BLOOD_KBQ_PER_ML, BLOOD_HALF_LIFE_H = 40.0, 60.0  # mono-exponential clearance
# The blood TIAC in closed form: C0 T / ln 2 (kBq h/mL) -> MBq h/mL.
BLOOD_TIAC_MBQ_H_PER_ML = BLOOD_KBQ_PER_ML * BLOOD_HALF_LIFE_H / math.log(2.0) / 1000.0
TO_GY = 3.6  # MBq h x mGy/(MBq s) x 3600 s/h / 1000 mGy/Gy


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _mono_samples(times_h, urine_percent=None, source="test"):
    times_h = np.asarray(times_h, dtype=float)
    blood = BLOOD_KBQ_PER_ML * np.exp(-math.log(2.0) / BLOOD_HALF_LIFE_H * times_h)
    urine = None if urine_percent is None else np.broadcast_to(float(urine_percent), times_h.shape).copy()
    return BloodSamples(times_h, blood, urine, source)


def _row(region, role, tia, method="local_deposition"):
    return {"region": region, "role": role, "method": method, "tia_mbq_h": tia}


def test_blood_samples_are_resolved_per_cycle_from_files_and_mappings(tmp_path):
    per_cycle = _write(tmp_path / "cycles.csv", "cycle,time_h,blood_activity_concentration_kBq_per_mL\n"
                                                "1,1,500\n1,24,40\n2,2,450\n2,48,20\n")
    single = _write(tmp_path / "single.csv", "time_h,blood_activity_concentration_kBq_per_mL\n1,300\n24,30\n")
    assert resolve_blood_samples(None, [1, 2]) == {}
    # A file with a cycle column: only the processed cycles are kept.
    chosen = resolve_blood_samples(per_cycle, [2])
    assert list(chosen) == [2]
    np.testing.assert_array_equal(chosen[2].blood_kbq_per_ml, [450.0, 20.0])
    # A file without one belongs to the one cycle processed...
    alone = resolve_blood_samples(str(single), [3])
    assert list(alone) == [3]
    np.testing.assert_array_equal(alone[3].times_h, [1.0, 24.0])
    # ... and is refused when several are, with the way out.
    with pytest.raises(ValueError) as error:
        resolve_blood_samples(single, [1, 2])
    assert str(error.value) == (f"blood samples {single} have no 'cycle' column but cycles [1, 2] are processed; "
                                f"add a cycle column, or give one file per cycle as CYCLE:FILE")
    # A mapping: samples given as such, a per-cycle file (its cycle picked) and a single-cycle file.
    given = _mono_samples([1.0, 24.0])
    mapped = resolve_blood_samples({"1": given, 2: per_cycle, 3: single}, [1, 2, 3])
    assert mapped[1] is given
    np.testing.assert_array_equal(mapped[2].times_h, [2.0, 48.0])
    np.testing.assert_array_equal(mapped[3].blood_kbq_per_ml, [300.0, 30.0])
    with pytest.raises(ValueError) as error:
        resolve_blood_samples({4: per_cycle}, [4])
    assert str(error.value) == f"blood samples {per_cycle}: no samples of cycle 4 (cycles [1, 2])"


def test_urine_route_and_organ_sources_give_the_hand_dose():
    # No excretion, samples every 2 h to 400 h: the whole body keeps everything, TIA = A0 / lambda
    # (trapezoid error (lambda h)^2 / 12 < 1e-5, tail exact).
    samples = _mono_samples(np.arange(2.0, 402.0, 2.0), urine_percent=0.0, source="blood.csv")
    rows = [_row("kidney_left", "kidney", 4000.0), _row("kidney_right", "kidney", 5000.0),
            _row("kidney_left", "kidney", 1e9, method="voxel_s_value"),  # same region, other method: ignored
            _row("liver_nt", "non-tumour", 20000.0), _row("L01", "lesion", 6000.0),
            _row("L02", "lesion", math.nan), _row("L03", "lesion", None),  # no TIA: no source
            _row("spleen", "spleen", 8000.0), _row("spleen", "spleen", 99.0),  # repeated row: counted once
            _row("marrow", "marrow", 700.0),  # not a cross-dose organ
            _row("L04", "lesion", 1e9)]
    primary = [True] * (len(rows) - 1) + [False]  # the last row is not the primary estimate
    marrow = cycle_marrow_dose(1, INJECTED_MBQ, samples, np.array([24.0]), np.array([1.0]), rows, primary)
    assert marrow.blood_fit.model == "mono"
    assert marrow.blood_fit.tiac_mbq_h_per_ml == pytest.approx(BLOOD_TIAC_MBQ_H_PER_ML, rel=1e-6)
    whole_body = INJECTED_MBQ / LU177_DECAY_CONSTANT_PER_H
    assert marrow.whole_body_tia_mbq_h == pytest.approx(whole_body, rel=1e-5)
    assert marrow.whole_body_source == "injected minus urinary excretion (physical decay after the last sample)"
    assert marrow.whole_body_fit is None and marrow.source == "blood.csv"
    organs = {"kidneys": 9000.0, "liver": 26000.0, "spleen": 8000.0}
    table = marrow_s_values("AM")
    s = table.s_mgy_per_mbq_s
    rm_tia = BLOOD_TIAC_MBQ_H_PER_ML * 1170.0
    dose = marrow.dose
    assert dose.red_marrow_tia_mbq_h == pytest.approx(rm_tia, rel=1e-6)
    assert dose.self_dose_gy == pytest.approx(rm_tia * s["red_marrow"] * TO_GY, rel=1e-6)
    assert dose.organ_dose_gy == pytest.approx({k: v * s[k] * TO_GY for k, v in organs.items()}, rel=1e-12)
    remainder = whole_body - rm_tia - sum(organs.values())
    assert dose.remainder_tia_mbq_h == pytest.approx(remainder, rel=1e-5)
    assert dose.remainder_dose_gy == pytest.approx(remainder * table.remainder_s_mgy_per_mbq_s(organs) * TO_GY,
                                                   rel=1e-5)


def test_single_scan_route_is_haenscheid_and_a_missing_body_activity_is_named():
    samples = _mono_samples([1.0, 4.0, 24.0, 96.0])
    marrow = cycle_marrow_dose(2, INJECTED_MBQ, samples, np.array([24.0]), np.array([3000.0]), [], [])
    # Haenscheid: the TIA is exact for T_eff equal to the scan time, A(t) 2 t / ln 2.
    assert marrow.whole_body_tia_mbq_h == pytest.approx(3000.0 * 2.0 * 24.0 / math.log(2.0), rel=1e-12)
    assert marrow.whole_body_source == "imaging: SPECT field of view, single scan (haenscheid)"
    assert marrow.dose.organ_dose_gy == {}
    with pytest.raises(ValueError) as error:
        cycle_marrow_dose(3, INJECTED_MBQ, samples, np.array([24.0]), np.array([math.nan]), [], [])
    assert str(error.value) == ("cycle 3: the whole-body TIA could not be estimated from the body activity [nan] "
                                "MBq at [24.0] h; give urine samples")


def test_blood_samples_no_clearance_fits_are_named_with_their_cycle_and_file():
    one = BloodSamples(np.array([2.0]), np.array([100.0]), None, "c2.csv")
    with pytest.raises(ValueError) as error:
        cycle_marrow_dose(2, INJECTED_MBQ, one, np.array([24.0]), np.array([3000.0]), [], [])
    assert str(error.value) == "cycle 2: blood samples c2.csv: blood clearance needs at least 2 samples, got 1"


def test_marrow_rows_accumulate_blood_and_imaging_doses_per_cycle():
    samples = _mono_samples([1.0, 4.0, 24.0, 96.0], source="blood.csv")
    first = cycle_marrow_dose(1, INJECTED_MBQ, samples, np.array([24.0]), np.array([3000.0]), [], [])
    second = cycle_marrow_dose(2, INJECTED_MBQ, samples, np.array([24.0]), np.array([1500.0]), [], [])
    rows = marrow_rows("P7", [first, second], {1: (0.21, "voxel S-value")}, "AM")
    assert [list(row) for row in rows] == [list(MARROW_COLUMNS)] * 2
    assert [row["cycle"] for row in rows] == [1, 2] and {row["method"] for row in rows} == {MARROW_METHOD}
    assert rows[0]["cumulative_dose_gy"] == pytest.approx(first.dose.dose_gy, rel=1e-15)
    assert rows[1]["cumulative_dose_gy"] == pytest.approx(first.dose.dose_gy + second.dose.dose_gy, rel=1e-15)
    # Same blood, half the body activity: the self-dose is the same, the remainder dose lower.
    assert rows[1]["self_dose_gy"] == pytest.approx(rows[0]["self_dose_gy"], rel=1e-12)
    assert rows[1]["remainder_dose_gy"] < rows[0]["remainder_dose_gy"]
    assert rows[0]["blood_tiac_mbq_h_per_ml"] == pytest.approx(BLOOD_TIAC_MBQ_H_PER_ML, rel=1e-6)
    assert rows[0]["kidneys_dose_gy"] is None and rows[0]["s_value_phantom"] == "AM"
    assert (rows[0]["imaging_dose_gy"], rows[0]["imaging_cumulative_dose_gy"]) == (0.21, 0.21)
    assert rows[0]["imaging_method"] == "imaging-based marrow segment, voxel S-value"
    assert (rows[1]["imaging_dose_gy"], rows[1]["imaging_method"], rows[1]["imaging_cumulative_dose_gy"]) == \
        (None, None, None)
