"""Calculator inputs: TIAC = TIA / administered activity per source region, MIRDcalc table, OLINDA case."""

from __future__ import annotations

import csv

import pytest

from luprrt.dosimetry import calculator_kinetics, write_mirdcalc_csv, write_olinda_case

ACTIVITY_MBQ = 7400.0
ROWS = [  # one cycle of a dose table (as read from CSV: strings), two methods
    {"cycle": "1", "region": "kidney_left", "role": "kidney", "side": "left", "lesion_id": "",
     "method": "local_deposition", "tia_mbq_h": "5550.0"},
    {"cycle": "1", "region": "kidney_right", "role": "kidney", "side": "right", "lesion_id": "",
     "method": "local_deposition", "tia_mbq_h": "3700.0"},
    {"cycle": "1", "region": "liver", "role": "liver", "side": "", "lesion_id": "",
     "method": "local_deposition", "tia_mbq_h": "29600.0"},
    {"cycle": "1", "region": "spleen", "role": "spleen", "side": "", "lesion_id": "",
     "method": "local_deposition", "tia_mbq_h": "1850.0"},
    {"cycle": "1", "region": "marrow", "role": "marrow", "side": "", "lesion_id": "",
     "method": "local_deposition", "tia_mbq_h": "740.0"},
    {"cycle": "1", "region": "L01", "role": "lesion", "side": "right", "lesion_id": "L01",
     "method": "local_deposition", "tia_mbq_h": "925.0"},
    {"cycle": "1", "region": "liver", "role": "liver", "side": "", "lesion_id": "",
     "method": "voxel_s_value", "tia_mbq_h": "99999.0"},
    {"cycle": "2", "region": "liver", "role": "liver", "side": "", "lesion_id": "",
     "method": "local_deposition", "tia_mbq_h": "1.0"},
]


def test_tiac_is_tia_over_activity_with_kidneys_summed():
    kinetics = {row["source_region"]: row for row in
                calculator_kinetics(ROWS, 1, ACTIVITY_MBQ, lesion_volumes_ml={"L01": 14.137})}
    # Hand values: (5550 + 3700) / 7400 = 1.25 h; 29600 / 7400 = 4 h; 1850 / 7400 = 0.25 h.
    assert kinetics["Kidneys"]["tiac_h"] == pytest.approx(1.25, rel=1e-15)
    assert kinetics["Kidneys"]["luprrt_region"] == "kidney_left+kidney_right"
    assert kinetics["Liver"]["tiac_h"] == pytest.approx(4.0, rel=1e-15)  # whole liver; voxel row ignored
    assert kinetics["Spleen"]["tiac_h"] == pytest.approx(0.25, rel=1e-15)
    assert kinetics["Red Marrow"]["tiac_h"] == pytest.approx(0.1, rel=1e-15)
    assert kinetics["Tumor L01"]["tiac_h"] == pytest.approx(0.125, rel=1e-15)
    assert kinetics["Tumor L01"]["volume_ml"] == 14.137
    with pytest.raises(ValueError, match="no dose rows of cycle 3"):
        calculator_kinetics(ROWS, 3, ACTIVITY_MBQ)
    with pytest.raises(ValueError, match="must be positive"):
        calculator_kinetics(ROWS, 1, 0.0)


def test_mirdcalc_table_and_olinda_case_file(tmp_path):
    kinetics = calculator_kinetics(ROWS, 1, ACTIVITY_MBQ)
    table = write_mirdcalc_csv(kinetics, tmp_path / "mirdcalc.csv")
    with open(table, newline="") as handle:
        rows = {row["source_region"]: row for row in csv.DictReader(handle)}
    assert float(rows["Kidneys"]["tiac_h"]) == 1.25
    assert float(rows["Kidneys"]["tia_mbq_h"]) == 9250.0
    template = tmp_path / "site.cas"
    template.write_text("Saved by the site\n[BEGIN CASE FILE]\n[BEGIN MODELS]\n[BEGIN KINETIC DATA]\n"
                        "Kidneys|0.0\nLiver|0.0\nSpleen|0.0\nRed Marrow|0.0\nTotal Body|3.5\n"
                        "[END KINETIC DATA]\n[END MODELS]\n[END CASE FILE]\n")
    case = write_olinda_case(kinetics, template, tmp_path / "case.cas")
    text = case.read_text()
    assert "Kidneys|1.25\n" in text and "Liver|4.0\n" in text and "Red Marrow|0.1\n" in text
    assert "Total Body|3.5\n" in text  # not measured: the site's value stays
    assert text.startswith("Saved by the site\n[BEGIN CASE FILE]") and text.endswith("[END CASE FILE]\n")
    template.write_text("[BEGIN KINETIC DATA]\nLiver|0.0\n[END KINETIC DATA]\n")
    with pytest.raises(ValueError, match=r"the phantom has no source organ \['Kidneys', 'Red Marrow', 'Spleen'\]"):
        write_olinda_case(kinetics, template, tmp_path / "other.cas")
    with pytest.raises(FileExistsError):
        write_olinda_case(kinetics, tmp_path / "case.cas", tmp_path / "case.cas")
