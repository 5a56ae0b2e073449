"""`luprrt dose` end to end on a written synthetic patient: tables against the truth, and clear errors."""

from __future__ import annotations

import json
import logging

import pytest

from luprrt.cli import main
from luprrt.dosimetry import HuDensityCalibration, organ_s_value_dose_gy, sphere_s_value_dose_gy
from luprrt.io import QuantitativeImage, read_image, read_seg_nrrd, write_seg_nrrd, write_volume
from luprrt.phantom import make_patient, write_patient
from luprrt.phantom.anatomy import KIDNEY, TISSUE_HU
from luprrt.segments import Segmentation
from luprrt.tables import read_rows_csv
from luprrt.workflows.dose_cycle import DOSE_COLUMNS

log = logging.getLogger(__name__)
DENSITY = HuDensityCalibration()


@pytest.fixture(scope="module")
def patient_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_dose") / "patient"
    write_patient(make_patient(2, small=True, n_cycles=1, noise=False, followup_weeks=()), folder)
    # Bad inputs next to the patient: a segmentation without kidneys, a SPECT in counts.
    segmentation = read_seg_nrrd(folder / "segmentation.seg.nrrd")
    write_seg_nrrd(Segmentation(segmentation.layers, [s for s in segmentation.segments
                                                       if s.tags.role != "kidney"]),
                   folder.parent / "no_kidney.seg.nrrd")
    spect = read_image(folder / "cycle1" / "spect_24h" / "spect.dcm")
    write_volume(QuantitativeImage(spect.image, "counts", acquisition_datetime=spect.acquisition_datetime,
                                   injection_datetime=spect.injection_datetime),
                 folder.parent / "counts.nrrd", "counts")
    return folder


def _edited_manifest(source, folder, edit_cycle1):
    """A patient folder with only a changed manifest whose paths point at ``source`` (absolute)."""
    folder.mkdir()
    manifest = json.loads((source / "manifest.json").read_text())
    visit = manifest["sessions"][0]
    visit["ct"], visit["segmentation"] = str(source / visit["ct"]), str(source / visit["segmentation"])
    visit["blood_samples"] = str(source / visit["blood_samples"])
    for scan in visit["spect"]:
        scan["file"] = str(source / scan["file"])
    edit_cycle1(visit)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_dose_cli_writes_tables_that_match_the_truth(patient_folder, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["dose", str(patient_folder), "--out", str(out), "--registration", "none", "--cycles", "1",
                   "--pvc-fwhm-mm", "12", "--no-voxel-dose"])
    assert status == 0
    printed = capsys.readouterr().out.split()
    assert {name.rsplit("/", 1)[-1] for name in printed} == {
        "dose.csv", "tac.csv", "limits.csv", "registration.csv", "marrow.csv", "tia_cycle1.nrrd",
        "dose_cycle1.nrrd", "provenance.json"}
    rows = read_rows_csv(out / "dose.csv")
    assert list(rows[0]) == list(DOSE_COLUMNS)
    assert not any(r["method"] == "voxel_s_value" for r in rows)
    by_key = {(r["region"], r["method"]): r for r in rows}
    truth = json.loads((patient_folder / "truth.json").read_text())
    cycle = truth["cycles"][0]
    for lesion in truth["lesions"]:
        volume = truth["volumes_ml"]["cycle1"][lesion["lesion_id"]]
        expected = float(sphere_s_value_dose_gy(cycle["tia_mbq_h"][lesion["lesion_id"]], volume,
                                                float(DENSITY.density(lesion["ct_hu"]))))
        got = float(by_key[(lesion["lesion_id"], "sphere_s_value")]["dose_gy"])
        diameter = lesion["longest_axial_diameter_mm"]["cycle1"]
        log.info("CLI lesion %s: %.1f mm, %.2f mL: %.3f Gy vs truth %.3f Gy (%+.1f %%)", lesion["lesion_id"],
                 diameter, volume, got, expected, 100 * (got / expected - 1))
        if diameter >= 30.0:
            assert got == pytest.approx(expected, rel=0.10)
    mass = truth["volumes_ml"]["cycle1"]["kidney_left"] * float(DENSITY.density(TISSUE_HU[KIDNEY]))
    expected = float(organ_s_value_dose_gy(cycle["tia_mbq_h"]["kidney_left"], "kidney", "AM", mass))
    assert float(by_key[("kidney_left", "organ_s_value")]["dose_gy"]) == pytest.approx(expected, rel=0.10)
    limits = {(r["quantity"], r["method"]): r for r in read_rows_csv(out / "limits.csv")}
    # The manifest names the cycle's blood samples: the blood-based marrow dose is the limit's, the
    # imaging-based one stands beside it, labelled.
    assert set(limits) == {("kidney_dose_gy", "organ_s_value"), ("kidney_bed_gy", "organ_s_value"),
                           ("marrow_dose_gy", "blood_based_eanm"),
                           ("marrow_dose_imaging_gy", "imaging_local_deposition")}
    assert "imaging-based" in limits[("marrow_dose_imaging_gy", "imaging_local_deposition")]["flag"]
    assert limits[("kidney_dose_gy", "organ_s_value")]["exceeded"] == "False"
    (marrow,) = read_rows_csv(out / "marrow.csv")
    expected = truth["marrow_blood_based"][0]["dose_gy"]
    assert float(marrow["dose_gy"]) == pytest.approx(expected, rel=0.10)
    assert float(limits[("marrow_dose_gy", "blood_based_eanm")]["value_gy"]) == pytest.approx(
        float(marrow["dose_gy"]), rel=1e-12)


def test_dose_cli_blood_samples_option_and_its_errors(patient_folder, tmp_path, capsys):
    samples = read_rows_csv(patient_folder / "cycle1" / "blood_samples.csv")
    given = tmp_path / "blood.csv"
    # Half the concentration: the marrow self-dose halves (RMBLR 1), the option overrides the manifest.
    given.write_text("cycle,time_h,blood_activity_concentration_kBq_per_mL\n" + "".join(
        f"1,{s['time_h']},{float(s['blood_activity_concentration_kBq_per_mL']) / 2}\n" for s in samples))
    out = tmp_path / "out"
    assert main(["dose", str(patient_folder), "--out", str(out), "--registration", "none", "--no-voxel-dose",
                 "--blood-samples", str(given), "--hematocrit", "0.4"]) == 0
    (marrow,) = read_rows_csv(out / "marrow.csv")
    truth = json.loads((patient_folder / "truth.json").read_text())["marrow_blood_based"][0]
    # Haematocrit 0.4: RMBLR = 0.19 / 0.6 (Sgouros 1993).
    assert float(marrow["rmblr"]) == pytest.approx(0.19 / 0.6, rel=1e-12)
    assert float(marrow["self_dose_gy"]) == pytest.approx(truth["self_dose_gy"] / 2 * 0.19 / 0.6, rel=0.05)
    assert marrow["blood_samples"] == str(given)
    bad = tmp_path / "bad.csv"
    bad.write_text("time_h,blood_activity_concentration_Bq_per_mL\n1,500\n")
    assert main(["dose", str(patient_folder), "--out", str(tmp_path / "out2"), "--blood-samples", str(bad)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("luprrt dose: error: blood samples ") and str(bad) in error
    assert "convert it to kBq/mL" in error and not (tmp_path / "out2").exists()
    assert main(["dose", str(patient_folder), "--out", str(tmp_path / "out3"), "--blood-samples",
                 str(tmp_path / "none.csv")]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "blood samples file not found" in error and "give --blood-samples FILE" in error


def test_dose_cli_constrained_biexponential_by_name(patient_folder, tmp_path, capsys):
    assert main(["dose", str(patient_folder), "--out", str(tmp_path / "bad"), "--tac-model", "biexp_prior",
                 "--uptake-rate-per-h", "0.12"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == ("luprrt dose: error: the biexp_prior model needs the prior SD of the uptake rate constant > 0 "
                     "(1/h), got None: give --uptake-rate-sd-per-h SD")
    out = tmp_path / "out"
    assert main(["dose", str(patient_folder), "--out", str(out), "--registration", "none", "--no-voxel-dose",
                 "--tac-model", "biexp_fixed_uptake", "--uptake-rate-per-h", "0.12"]) == 0
    rows = [r for r in read_rows_csv(out / "dose.csv") if r["method"] == "local_deposition"]
    assert rows and all(r["fit_reason"] == "biexp_fixed_uptake chosen by name" for r in rows)
    assert {r["fit_model"] for r in rows} <= {"biexp_fixed_uptake", "trapezoid"}


def test_dose_cli_refuses_to_overwrite(patient_folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "dose.csv").write_text("keep me")
    assert main(["dose", str(patient_folder), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().endswith("out/dose.csv; add --overwrite to replace it")
    assert (out / "dose.csv").read_text() == "keep me"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda visit, bad: visit["spect"].reverse(),
     "scan times must be positive and increase in the order listed"),
    (lambda visit, bad: visit["spect"][0].update(file="/nonexistent/spect_4h.dcm"),
     "/nonexistent/spect_4h.dcm"),
    (lambda visit, bad: visit.update(spect=[]), "cycle 1 lists no SPECT"),
    (lambda visit, bad: visit.update(segmentation=str(bad / "no_kidney.seg.nrrd")),
     "cycle 1: the segmentation has no kidney segment (role 'kidney')"),
    (lambda visit, bad: visit["spect"][1].update(file=str(bad / "counts.nrrd")),
     "counts.nrrd is in 'counts', not Bq/mL"),
], ids=["non-increasing times", "missing SPECT", "no SPECT", "no kidney segment", "SPECT in counts"])
def test_dose_cli_reports_bad_input_in_one_line(patient_folder, tmp_path, capsys, edit, message):
    bad_inputs = patient_folder.parent
    folder = _edited_manifest(patient_folder, tmp_path / "patient", lambda visit: edit(visit, bad_inputs))
    assert main(["dose", str(folder), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("luprrt dose: error: ") and message in error
    assert not (tmp_path / "out").exists()


def test_dose_cli_rejects_bad_cycles_and_unknown_cycle(patient_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["dose", str(patient_folder), "--out", str(tmp_path / "out"), "--cycles", "1,x"])
    assert exit_info.value.code == 2
    assert "expected comma-separated cycle numbers such as 1,2; got '1,x'" in capsys.readouterr().err
    assert main(["dose", str(patient_folder), "--out", str(tmp_path / "out"), "--cycles", "2"]) == 2
    assert "no treatment cycle [2]; the manifest has cycles [1]" in capsys.readouterr().err
