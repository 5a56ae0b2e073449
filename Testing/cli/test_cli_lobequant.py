"""`luprrt lobequant` on a written synthetic patient: folder and explicit inputs, no overwriting, errors."""

from __future__ import annotations

import json
import math

import pytest

from luprrt.cli import main
from luprrt.io import read_image, read_seg_nrrd, write_seg_nrrd, write_volume
from luprrt.phantom import make_patient, write_patient
from luprrt.tables import read_rows_csv

OUTPUTS = ("lobequant_tn.csv", "lobequant_ia_iv_ratio.csv", "lobequant_trial_endpoint.csv",
           "lobequant_trial_ia_iv_ratio.csv", "lobequant_uptake.csv", "provenance.json")


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    folder = tmp_path_factory.mktemp("patient")
    write_patient(make_patient(5, small=True, n_cycles=1, hours_post_injection=(24.0,), followup_weeks=(),
                               ia_side="right", ia_tn_factor=2.0, lesion_shape="sphere"), folder)
    return folder


@pytest.fixture(scope="module")
def folder_run(patient, tmp_path_factory):
    out = tmp_path_factory.mktemp("folder_run")
    assert main(["lobequant", str(patient), "--ia-side", "right", "--out", str(out)]) == 0
    return out


def test_patient_folder_run_writes_every_table(patient, folder_run, capsys):
    assert sorted(p.name for p in folder_run.iterdir()) == sorted(OUTPUTS)
    truth = json.loads((patient / "truth.json").read_text())
    tn = read_rows_csv(folder_run / "lobequant_tn.csv")
    lesions = {r["lesion_id"]: r for r in tn if r["role"] == "lesion"}
    assert set(lesions) == {le["lesion_id"] for le in truth["lesions"]}
    for lesion in truth["lesions"]:
        r = lesions[lesion["lesion_id"]]
        assert (r["side"], r["route"]) == (lesion["side"], lesion["route"])
        assert float(r["tn_mean"]) > 1.0
    ratio = read_rows_csv(folder_run / "lobequant_ia_iv_ratio.csv")
    assert [(r["cycle"], r["ia_side"]) for r in ratio] == [("1", "right")]
    tumour = {r["route"]: float(r["tn_mean"]) for r in tn if r["role"] == "tumour"}
    assert float(ratio[0]["tn_mean_ia_over_iv"]) == pytest.approx(tumour["IA"] / tumour["IV"], rel=1e-12)
    assert float(ratio[0]["tn_mean_ia_over_iv"]) > 1.0  # ia_tn_factor 2
    uptake = {r["region"]: r for r in read_rows_csv(folder_run / "lobequant_uptake.csv")}
    # The lobes and the lesions in them make up the liver; everything else is extrahepatic.
    assert float(uptake["liver"]["activity_mbq"]) == pytest.approx(
        float(uptake["right lobe"]["activity_mbq"]) + float(uptake["left lobe"]["activity_mbq"]), rel=1e-9)
    assert 0 < float(uptake["kidneys"]["uptake_percent_of_administered"]) < 5
    record = json.loads((folder_run / "provenance.json").read_text())
    assert record["parameters"]["ia_side"] == "right" and record["parameters"]["occupancy"] == "nearest"


def test_explicit_files_with_a_plane_give_the_folder_numbers(patient, folder_run, tmp_path):
    """A lobe-less segmentation split on Cantlie's plane (RAS, as Slicer shows it) reproduces the lobes."""
    segmentation = read_seg_nrrd(patient / "segmentation.seg.nrrd")
    write_seg_nrrd(segmentation.without([s.segment_id for s in segmentation.find(role="lobe")]),
                   tmp_path / "liver.seg.nrrd")
    spect = read_image(patient / "cycle1" / "spect_24h" / "spect.dcm")
    write_volume(spect.image * 1e-3, tmp_path / "spect.nrrd", "kBq/mL")  # units converted on reading
    plane = json.loads((patient / "truth.json").read_text())["cantlie_plane"]
    (px, py, pz), (nx, ny, nz) = plane["point_mm"], plane["normal_towards_left_lobe"]
    hours = spect.hours_post_injection
    activity = spect.injected_activity_mbq
    out = tmp_path / "out"
    assert main(["lobequant", "--ct", str(patient / "ct"), "--seg", str(tmp_path / "liver.seg.nrrd"),
                 "--spect", f"1@{hours!r}:{tmp_path / 'spect.nrrd'}", "--administered-mbq", f"1:{activity!r}",
                 "--ia-side", "right", "--ras", "--plane", f"{-px},{-py},{pz}:{-nx},{-ny},{nz}",
                 "--out", str(out)]) == 0
    ours = read_rows_csv(out / "lobequant_tn.csv")
    theirs = read_rows_csv(folder_run / "lobequant_tn.csv")
    assert [(r["region"], r["side"], r["route"], r["volume_ml"]) for r in ours] == \
        [(r["region"], r["side"], r["route"], r["volume_ml"]) for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        for key in ("mean_bq_per_ml", "tn_mean"):
            # kBq/mL float32 round trip: 6e-8 relative per voxel value.
            assert math.isclose(float(a[key]), float(b[key]), rel_tol=1e-6) or a[key] == b[key] == "nan"
    record = json.loads((out / "provenance.json").read_text())
    assert record["parameters"]["lobe_split"]["method"] == "plane"


def test_refuses_to_overwrite_and_names_the_files(patient, folder_run, capsys):
    before = (folder_run / "lobequant_tn.csv").read_bytes()
    assert main(["lobequant", str(patient), "--out", str(folder_run)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("luprrt lobequant: error: output files exist:")
    assert "lobequant_tn.csv" in error and "--overwrite" in error
    assert (folder_run / "lobequant_tn.csv").read_bytes() == before
    assert main(["lobequant", str(patient), "--out", str(folder_run), "--overwrite", "--fractional",
                 "--margin-mm", "8"]) == 0
    record = json.loads((folder_run / "provenance.json").read_text())
    assert (record["parameters"]["occupancy"], record["parameters"]["margin_mm"]) == ("fractional", 8.0)


@pytest.mark.parametrize("arguments, message", [
    (["{patient}", "--ia-side", "left"], "IA side 'left' contradicts"),
    (["{patient}", "--seg", "x.seg.nrrd"], "give a patient folder or --ct, --seg, --spect, not both"),
    (["--ct", "{patient}/ct", "--seg", "{patient}/segmentation.seg.nrrd"], "(missing --spect)"),
    (["--ct", "{patient}/ct", "--seg", "{patient}/segmentation.seg.nrrd", "--spect", "spect.dcm"],
     "--spect 'spect.dcm': expected CYCLE:PATH"),
    (["--ct", "{patient}/ct", "--seg", "{patient}/segmentation.seg.nrrd", "--spect", "1:{patient}/nope.dcm",
      "--ia-side", "right"], "SPECT of cycle 1 not found: {patient}/nope.dcm"),
    (["--ct", "{patient}/ct", "--seg", "{patient}/segmentation.seg.nrrd", "--spect", "1:{spect}"],
     "the IA side is missing"),
    (["--ct", "{patient}/ct", "--seg", "{patient}/segmentation.seg.nrrd", "--spect",
      "1:{patient}/truth/regions_cycle1.nrrd", "--ia-side", "right"],
     "regions_cycle1.nrrd: the voxel units are not"),
    (["{patient}", "--plane", "0,0,0"], "plane '0,0,0': expected x,y,z:nx,ny,nz"),
    (["{patient}", "--couinaud", "{patient}/nothing.nrrd"], "Couinaud label file not found"),
    (["{patient}/missing"], "patient folder not found"),
])
def test_bad_inputs_give_one_line_errors(patient, tmp_path, capsys, arguments, message):
    spect = patient / "cycle1" / "spect_24h" / "spect.dcm"
    fill = {"patient": str(patient), "spect": str(spect)}
    argv = ["lobequant", *(a.format(**fill) for a in arguments), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("luprrt lobequant: error: ")
    assert message.format(**fill) in lines[-1]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_help_names_the_inputs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["lobequant", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--ct", "--seg", "--spect", "--ia-side", "--plane", "--cantlie", "--couinaud",
                   "--right-vessels", "--fractional", "--margin-mm", "--ras"):
        assert option in text
