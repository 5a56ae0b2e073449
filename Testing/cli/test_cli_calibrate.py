"""`luprrt calibrate` on phantom scans written as NRRD, then `luprrt lobequant --calibration` with it."""

from __future__ import annotations

import json

import pytest
from gaussian_world import BACKGROUND_BQ_PER_ML, FWHM_MM, cylinder_scan, iec_scan

from luprrt.cli import main
from luprrt.io import write_volume
from luprrt.phantom import make_patient, write_patient
from luprrt.tables import read_rows_csv


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantoms")
    _, cylinder, gain = cylinder_scan()
    write_volume(cylinder * gain, folder / "cylinder.nrrd", "counts")
    for ratio in (4.0, 10.0):
        write_volume(iec_scan(ratio)[1], folder / f"iec{ratio:g}.nrrd", "Bq/mL")
    out = folder / "calibration"
    args = ["calibrate", "--out", str(out), "--cylinder", str(folder / "cylinder.nrrd"),
            "--cylinder-activity-mbq", "800", "--frame-duration-s", "30",
            "--iec", str(folder / "iec4.nrrd"), "--iec-concentrations", f"{4 * BACKGROUND_BQ_PER_ML},{BACKGROUND_BQ_PER_ML}",
            "--iec", str(folder / "iec10.nrrd"), "--iec-concentrations", f"{10 * BACKGROUND_BQ_PER_ML},{BACKGROUND_BQ_PER_ML}",
            "--site", "Test site", "--camera", "Simulated", "--collimator", "none", "--reconstruction", "Gaussian",
            "--resolution-recovery", "no", "--date", "2024-05-06", "--performed-by", "pytest"]
    assert main(args) == 0
    return folder, out


def test_calibrate_writes_the_versioned_file_and_tables(calibrated, capsys):
    folder, out = calibrated
    data = json.loads((out / "site_calibration.json").read_text())
    assert (data["format"], data["version"], data["site"], data["camera"], data["performed_by"], data["date"]) == \
        ("luprrt-site-calibration", 1, "Test site", "Simulated", "pytest", "2024-05-06")
    assert data["calibration_factor"]["cps_per_mbq"] == pytest.approx(12.0, rel=0.01)  # 360 counts/MBq / 30 s
    assert FWHM_MM <= data["effective_fwhm_mm"] <= 1.1 * FWHM_MM
    assert str(folder / "iec4.nrrd") in data["provenance"]["inputs"]
    spheres = read_rows_csv(out / "calibration_spheres.csv")
    assert len(spheres) == 12 and {float(r["sphere_to_background"]) for r in spheres} == {4.0, 10.0}
    curves = read_rows_csv(out / "calibration_recovery_curves.csv")
    assert {r["quantity"] for r in curves} == {"contrast", "mean", "max"}
    # Nothing is overwritten without --overwrite.
    assert main(["calibrate", "--out", str(out), "--recovery-table", str(out / "calibration_spheres.csv")]) == 2
    assert "output files exist" in capsys.readouterr().err


def test_bad_calibration_inputs_are_one_line_errors(calibrated, tmp_path, capsys):
    folder, _ = calibrated
    assert main(["calibrate", "--out", str(tmp_path / "a"), "--cylinder", str(folder / "cylinder.nrrd")]) == 2
    assert "--cylinder-activity-mbq" in capsys.readouterr().err
    assert main(["calibrate", "--out", str(tmp_path / "b"), "--iec", str(folder / "iec4.nrrd")]) == 2
    assert "one --iec-concentrations" in capsys.readouterr().err
    assert main(["calibrate", "--out", str(tmp_path / "c"), "--iec", str(folder / "iec4.nrrd"),
                 "--iec-concentrations", "160,40"]) == 2
    assert "wrong image units" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "c").exists()


def test_lobequant_with_the_calibration(calibrated, tmp_path):
    _, out = calibrated
    patient = tmp_path / "patient"
    write_patient(make_patient(3, small=True, n_cycles=1, hours_post_injection=(24.0,), spect_fwhm_mm=FWHM_MM,
                               followup_weeks=()), patient)
    result = tmp_path / "tn"
    assert main(["lobequant", str(patient), "--out", str(result), "--calibration", str(out / "site_calibration.json"),
                 "--no-boundary-uncertainty", "--no-uptake"]) == 0
    rows = read_rows_csv(result / "lobequant_tn.csv")
    lesion = next(r for r in rows if r["role"] == "lesion" and r["target_rank"] == "1")
    assert float(lesion["tn_mean_corrected"]) > float(lesion["tn_mean"])
    assert lesion["calibration"].startswith("site_calibration.json")
    ratio = read_rows_csv(result / "lobequant_ia_iv_ratio.csv")[0]
    assert float(ratio["tn_mean_corrected_ia_over_iv_ci95_low"]) < float(ratio["tn_mean_corrected_ia_over_iv"])
    trial = read_rows_csv(result / "lobequant_trial_ia_iv_ratio.csv")[0]
    assert float(trial["tn_mean_corrected_targets_ia_over_iv"]) > 0
    provenance = json.loads((result / "provenance.json").read_text())
    assert str(out / "site_calibration.json") in provenance["inputs"]


def test_dicom_counts_cylinder_gives_the_writers_sensitivity(tmp_path):
    """A cylinder written as DICOM NM in counts (15 cps/MBq per view time by the writer): the factor read back."""
    from datetime import datetime

    from luprrt.io import DicomPatient, new_uid, write_nm_spect
    from luprrt.io.dicom_write import COUNTS_TRAP_CALIBRATION_CPS_PER_MBQ

    _, cylinder, _ = cylinder_scan()
    path = write_nm_spect(cylinder, tmp_path / "cylinder.dcm", patient=DicomPatient("CAL"), study_uid=new_uid(),
                          frame_of_reference_uid=new_uid(), acquisition_datetime=datetime(2024, 5, 6, 10, 0),
                          injection_datetime=datetime(2024, 5, 6, 9, 0), injected_activity_mbq=800.0, trap="counts")
    out = tmp_path / "calibration"
    # Activity measured at 09:00, one hour before the scan: the factor uses the activity decayed to 10:00.
    assert main(["calibrate", "--out", str(out), "--cylinder", str(path), "--cylinder-activity-mbq",
                 str(800.0 * 2 ** (1 / 159.528)), "--cylinder-activity-time", "2024-05-06T09:00"]) == 0
    data = json.loads((out / "site_calibration.json").read_text())
    assert data["calibration_factor"]["cps_per_mbq"] == pytest.approx(COUNTS_TRAP_CALIBRATION_CPS_PER_MBQ, rel=0.01)
    assert data["recovery_curves"] == [] and data["effective_fwhm_mm"] is None
