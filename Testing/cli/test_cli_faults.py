"""Bad inputs and faults for every `luprrt` sub-command: exit 2, one stderr line, inputs unchanged.

Each case runs the real command line on a tiny input (one synthetic patient of one cycle,
small CSVs) and checks the contract of the single error path: exit status 2, exactly one
line on stderr that starts ``luprrt <command>: error:`` and names the input or the fix,
every input byte-identical afterwards, and no output half-written. Faults the operating
system makes (a file-size limit hit while writing, a read-only output folder, an unreadable
input) run the command in a child process: with RLIMIT_FSIZE, or (as root, who ignores file
permissions) without the capabilities CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from luprrt.cli import main
from luprrt.io import read_image, read_seg_nrrd, write_seg_nrrd, write_volume
from luprrt.phantom import make_patient, write_patient
from luprrt.segments import Segmentation

GOOD_CSV = ("patient_id,lesion_id,organ,is_lymph_node,date,longest_diameter_mm,short_axis_mm,lesion_type\n"
            "P1,L1,liver,false,2024-01-08,30,,target\n"
            "P1,L1,liver,false,2024-03-04,20,,target\n")


# --- helpers ------------------------------------------------------------------------------------

def snapshot(*paths: Path) -> dict[str, str]:
    """SHA-256 of every file under the given files or folders."""
    result = {}
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        result.update({str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.exists()})
    return result


def refused(capsys, argv: list[str], *inputs: Path) -> str:
    """Run ``luprrt argv``; assert exit 2, one stderr line, unchanged inputs; return the message."""
    before = snapshot(*inputs)
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse refusals
        status = stop.code
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert status == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"luprrt {argv[0]}: error: "), lines[0]
    assert "Traceback" not in lines[0]
    assert snapshot(*inputs) == before
    return lines[0].split(": error: ", 1)[1]


def _drop_file_permission_override() -> None:
    """In a child of root: lose CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so file modes apply (man 7 capabilities)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH (linux/capability.h)
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone after exec, even for root
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_cli(argv: list[str], *, file_size_limit: int | None = None, obey_permissions: bool = False):
    """``luprrt argv`` in a child process; returns (exit status, stderr lines)."""
    def prepare():
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
        if obey_permissions and os.geteuid() == 0:
            _drop_file_permission_override()

    environment = dict(os.environ)
    if file_size_limit is not None:
        # Under `make coverage` the child would measure itself and fail to save its data past the limit
        # (a traceback on stderr): a child with a file-size limit is run unmeasured.
        for name in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"):
            environment.pop(name, None)
    result = subprocess.run([sys.executable, "-m", "luprrt.cli", *argv], capture_output=True, text=True,
                            preexec_fn=prepare, timeout=600, env=environment)
    return result.returncode, [line for line in result.stderr.splitlines() if line.strip()]


def permissions_apply() -> bool:
    """True when a child can be made to obey file modes (not root, or root able to drop the capabilities)."""
    if os.geteuid() != 0:
        return True
    probe = subprocess.run([sys.executable, "-c", "open('/proc/self/status').read()"],
                           preexec_fn=_drop_file_permission_override, capture_output=True)
    return probe.returncode == 0


needs_permissions = pytest.mark.skipif(sys.platform != "linux" or not permissions_apply(),
                                       reason="needs Linux and a way to make file modes apply to the test's user")


# --- inputs -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def patient(tmp_path_factory) -> Path:
    """One synthetic patient, one cycle, one 24 h SPECT, small voxels: a few seconds to make."""
    folder = tmp_path_factory.mktemp("fault_patient")
    write_patient(make_patient(7, small=True, n_cycles=1, hours_post_injection=(24.0,), followup_weeks=(),
                               ia_side="right", lesion_shape="sphere"), folder)
    return folder


@pytest.fixture(scope="module")
def files(patient, tmp_path_factory) -> dict[str, Path]:
    """Explicit lobequant inputs and broken variants of them."""
    folder = tmp_path_factory.mktemp("fault_files")
    spect = read_image(patient / "cycle1" / "spect_24h" / "spect.dcm")
    values = sitk.GetArrayFromImage(spect.image)

    def volume(name, array, units="Bq/mL"):
        image = sitk.GetImageFromArray(array.astype(np.float32))
        image.CopyInformation(spect.image)
        return write_volume(image, folder / name, units)

    nan = values.copy()
    nan[nan.shape[0] // 2] = np.nan
    segmentation = read_seg_nrrd(patient / "segmentation.seg.nrrd")
    shifted = Segmentation([sitk.Image(layer) for layer in segmentation.layers], segmentation.segments)
    for layer in shifted.layers:
        layer.SetOrigin(tuple(np.add(layer.GetOrigin(), (120.0, 0.0, 0.0))))
    no_lesions = segmentation.without([s.segment_id for s in segmentation.find(role="lesion")])
    (folder / "corrupt.nrrd").write_bytes(b"NRRD0004\ntype: float\ndimension: 3\nsizes: 9 9\n\x00garbage")
    (folder / "not_dicom").mkdir()
    (folder / "not_dicom" / "slice.dcm").write_bytes(b"\x00" * 300)
    return {
        "ct": patient / "ct", "seg": patient / "segmentation.seg.nrrd", "spect": volume("spect.nrrd", values),
        "hours": spect.hours_post_injection, "mbq": spect.injected_activity_mbq,
        "zero": volume("zero.nrrd", np.zeros_like(values)), "nan": volume("nan.nrrd", nan),
        "offset": volume("offset.nrrd", values - 0.5 * values.max()),
        "hu": volume("hu.nrrd", values, "HU"), "corrupt": folder / "corrupt.nrrd", "not_dicom": folder / "not_dicom",
        "shifted": write_seg_nrrd(shifted, folder / "shifted.seg.nrrd"),
        "no_lesions": write_seg_nrrd(no_lesions, folder / "no_lesions.seg.nrrd"),
    }


def lobequant_argv(files, out, *, ct=None, seg=None, spect=None, hours=True, mbq=True, extra=()):
    spect_path = spect or files["spect"]
    argv = ["lobequant", "--ct", str(ct or files["ct"]), "--seg", str(seg or files["seg"]),
            "--spect", f"1@{files['hours']!r}:{spect_path}" if hours else f"1:{spect_path}",
            "--ia-side", "right", "--out", str(out), *extra]
    return argv + (["--administered-mbq", f"1:{files['mbq']!r}"] if mbq else [])


def lobequant_inputs(files):
    return [files["ct"], files["seg"], files["spect"]]


@pytest.fixture
def measurements(tmp_path) -> Path:
    path = tmp_path / "m.csv"
    path.write_text(GOOD_CSV)
    return path


# --- recist ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "expected"), [
    (b"\xff\xfe\x00garbage\x81", "not a UTF-8 text (CSV) file"),
    (b"patient_id,lesion_id,date\nP1,L1,2024-01-08\n", "missing column(s) ['organ', 'is_lymph_node', "
                                                         "'lesion_type']"),
    (GOOD_CSV.split("\n", 1)[0].encode() + b"\n", "no measurement rows"),
    (GOOD_CSV.replace("2024-03-04", "2024-13-04").encode(), "1 of 1 patients not assessed (P1: "),
    (GOOD_CSV.replace(",20,", ",-20,").encode(), "diameter must be finite and >= 0 mm; got -20"),
    (GOOD_CSV.replace(",20,", ",nan,").encode(), "diameter must be finite and >= 0 mm; got nan"),
    (GOOD_CSV.replace(",20,,target", ",20,,target,extra,cells").encode(), "more cells than the 8 columns"),
    (GOOD_CSV.replace(",30,", ",8,").encode(), "target lesion 'L1' is not measurable at baseline"),
    ((GOOD_CSV + "P1,L9,liver,false,2024-01-08,15,,new\n").encode(), "baseline cannot have new lesions"),
], ids=["binary", "columns", "empty", "bad-date", "negative", "nan", "extra-cells", "not-measurable",
        "new-at-baseline"])
def test_recist_bad_tables(tmp_path, capsys, content, expected):
    table = tmp_path / "m.csv"
    table.write_bytes(content)
    message = refused(capsys, ["recist", str(table), "--out", str(tmp_path / "out"), "--no-figures"], table)
    assert expected in message


def test_recist_missing_and_folder_inputs(tmp_path, capsys):
    assert refused(capsys, ["recist", str(tmp_path / "no.csv"), "--out", str(tmp_path / "o")]) == \
        f"measurement table not found: {tmp_path / 'no.csv'}"
    assert "measurement table not found" in refused(capsys, ["recist", str(tmp_path), "--out", str(tmp_path / "o")])


def test_recist_out_is_a_file(measurements, tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    message = refused(capsys, ["recist", str(measurements), "--out", str(tmp_path / "taken")], measurements,
                      tmp_path / "taken")
    assert message == f"output folder {tmp_path / 'taken'} is a file; choose a folder as --out"


def test_recist_refuses_existing_outputs_before_writing_anything(measurements, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "provenance.json").write_text("earlier")  # the last file the run writes
    message = refused(capsys, ["recist", str(measurements), "--out", str(out)], measurements, out)
    assert message == f"output file exists: {out / 'provenance.json'}; add --overwrite to replace it"
    assert sorted(p.name for p in out.iterdir()) == ["provenance.json"]  # no table or figure written first


@pytest.mark.parametrize("link", [False, True], ids=["same-name", "hard-link"])
def test_recist_overwrite_never_replaces_its_input(tmp_path, capsys, link):
    out = tmp_path / "out"
    out.mkdir()
    if link:  # the same file under an output's name: only the inode tells
        table = tmp_path / "m.csv"
        table.write_text(GOOD_CSV)
        os.link(table, out / "lesion_outcomes.csv")
    else:
        table = out / "lesion_outcomes.csv"
        table.write_text(GOOD_CSV)
    message = refused(capsys, ["recist", str(table), "--out", str(out), "--overwrite", "--no-figures"], table, out)
    assert message == (f"{out / 'lesion_outcomes.csv'}: the output would replace an input of this run; choose "
                       "another --out")


def test_recist_file_size_limit_leaves_the_earlier_outputs(measurements, tmp_path):
    out = tmp_path / "out"
    assert main(["recist", str(measurements), "--out", str(out), "--no-figures"]) == 0
    before = snapshot(out, measurements)
    # The tables are a few hundred bytes each: 200 bytes stops the first one half-way.
    status, err = run_cli(["recist", str(measurements), "--out", str(out), "--no-figures", "--overwrite"],
                          file_size_limit=200)
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith("luprrt recist: error: file too large while writing ") and "--out" in err[0]
    assert snapshot(out, measurements) == before
    assert not list(tmp_path.glob(".*luprrt-partial*"))


@needs_permissions
def test_recist_read_only_output_folder(measurements, tmp_path):
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        status, err = run_cli(["recist", str(measurements), "--out", str(parent / "out")], obey_permissions=True)
    finally:
        parent.chmod(0o755)
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith("luprrt recist: error: cannot write ") and "permission denied; choose a writable " \
                                                                       "--out" in err[0]
    assert list(parent.iterdir()) == []


@needs_permissions
def test_recist_unreadable_input(measurements, tmp_path):
    measurements.chmod(0o000)
    try:
        status, err = run_cli(["recist", str(measurements), "--out", str(tmp_path / "out")], obey_permissions=True)
    finally:
        measurements.chmod(0o644)
    assert status == 2 and err == [f"luprrt recist: error: cannot read {measurements}: permission denied; make it "
                                   "readable or give another input"]


# --- lobequant ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("variant", "expected"), [
    ("zero", "the SPECT has no positive voxel (every value is 0)"),
    ("nan", "SPECT voxels are not finite numbers (NaN or infinite)"),
    ("offset", "more than reconstruction noise gives (5 %); check the image's rescale intercept and units"),
    ("hu", "SPECT voxel values are in HU, not Bq/mL"),
    ("corrupt", "cannot read it as a NRRD volume"),
])
def test_lobequant_refuses_spects_that_cannot_be_quantified(files, tmp_path, capsys, variant, expected):
    message = refused(capsys, lobequant_argv(files, tmp_path / "out", spect=files[variant]),
                      *lobequant_inputs(files), files[variant])
    assert str(files[variant]) in message and expected in message
    assert not (tmp_path / "out").exists()


def test_lobequant_refuses_a_segmentation_without_lesions(files, tmp_path, capsys):
    message = refused(capsys, lobequant_argv(files, tmp_path / "out", seg=files["no_lesions"]),
                      files["no_lesions"], files["ct"])
    assert message == (f"{files['no_lesions']}: the segmentation has no lesion segment (role=lesion): T/N compares "
                       "lesions with non-tumour liver; tag the lesions (LuPRRT role 'lesion') in the segmentation")


def test_lobequant_reports_how_much_of_a_shifted_segmentation_lies_in_the_spect(files, tmp_path, capsys):
    message = refused(capsys, lobequant_argv(files, tmp_path / "out", seg=files["shifted"]), files["shifted"])
    assert message.startswith(f"segmentation {files['shifted']} overlaps SPECT {files['spect']} only partly: "
                              "inside its field of view lie ")
    assert " %" in message and "register the segmentation to the image" in message


def test_lobequant_names_a_bad_ct_as_the_ct(files, tmp_path, capsys):
    message = refused(capsys, lobequant_argv(files, tmp_path / "out", ct=files["not_dicom"]), files["not_dicom"])
    assert message.startswith(f"{files['not_dicom']}: found no CT, NM or PET images")


def test_lobequant_asks_for_the_hours_in_cli_words(files, tmp_path, capsys):
    message = refused(capsys, lobequant_argv(files, tmp_path / "out", hours=False), files["spect"])
    assert "hours after injection unknown" in message


def test_lobequant_asks_for_the_activity_in_cli_words(files, tmp_path, capsys):
    message = refused(capsys, lobequant_argv(files, tmp_path / "out", mbq=False), files["spect"])
    assert message == ("administered activity unknown for cycles [1] (no RadionuclideTotalDose in the SPECT "
                       "header): give --administered-mbq CYCLE:MBQ, or add --no-uptake")


def test_lobequant_needs_units_of_a_unitless_volume(files, tmp_path, capsys):
    image = read_image(files["spect"]).image
    unitless = tmp_path / "unitless.nrrd"
    sitk.WriteImage(image, str(unitless))
    message = refused(capsys, lobequant_argv(files, tmp_path / "out", spect=unitless), unitless)
    assert message.startswith(f"{unitless}: the voxel units are not recorded in the file; give --spect-units UNIT")


def test_lobequant_patient_folder_faults(patient, tmp_path, capsys):
    assert refused(capsys, ["lobequant", str(tmp_path / "nobody"), "--out", str(tmp_path / "o")]) == \
        f"patient folder not found: {tmp_path / 'nobody'}"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "has no manifest.json" in refused(capsys, ["lobequant", str(empty), "--out", str(tmp_path / "o")])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    assert "manifest.json: not a readable JSON manifest" in refused(
        capsys, ["lobequant", str(broken), "--out", str(tmp_path / "o")], broken)
    message = refused(capsys, ["lobequant", str(patient), "--ia-side", "left", "--out", str(tmp_path / "o")],
                      patient)
    assert "IA side 'left' contradicts" in message


def test_lobequant_file_size_limit_leaves_the_earlier_outputs(files, tmp_path):
    out = tmp_path / "out"
    assert main(lobequant_argv(files, out)) == 0
    before = snapshot(out, *lobequant_inputs(files))
    status, err = run_cli(lobequant_argv(files, out, extra=["--overwrite"]), file_size_limit=1024)
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith("luprrt lobequant: error: file too large while writing ")
    assert snapshot(out, *lobequant_inputs(files)) == before


# --- dose -----------------------------------------------------------------------------------------

def _patient_copy(patient: Path, folder: Path, edit) -> Path:
    shutil.copytree(patient, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest, folder)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_dose_refuses_a_nan_spect_naming_it(patient, files, tmp_path, capsys):
    def nan_spect(manifest, folder):
        shutil.copy(files["nan"], folder / "nan.nrrd")
        cycle = next(v for v in manifest["sessions"] if v.get("kind") == "cycle")
        cycle["spect"][0]["file"] = "nan.nrrd"

    folder = _patient_copy(patient, tmp_path / "p", nan_spect)
    message = refused(capsys, ["dose", str(folder), "--out", str(tmp_path / "out"), "--no-voxel-dose"], folder)
    assert message.startswith(f"{folder / 'nan.nrrd'}: ") and "not finite numbers" in message


def test_dose_refuses_a_segmentation_without_kidneys(patient, tmp_path, capsys):
    def no_kidneys(manifest, folder):
        segmentation = read_seg_nrrd(folder / "segmentation.seg.nrrd")
        write_seg_nrrd(segmentation.without([s.segment_id for s in segmentation.find(role="kidney")]),
                       folder / "segmentation.seg.nrrd", overwrite=True)

    folder = _patient_copy(patient, tmp_path / "p", no_kidneys)
    message = refused(capsys, ["dose", str(folder), "--out", str(tmp_path / "out"), "--no-voxel-dose"], folder)
    assert "the segmentation has no kidney segment (role 'kidney')" in message


def test_dose_bad_arguments_and_folders(patient, tmp_path, capsys):
    assert "no treatment cycle [9]" in refused(
        capsys, ["dose", str(patient), "--out", str(tmp_path / "o"), "--cycles", "9"], patient)
    (tmp_path / "file").write_text("x")
    assert refused(capsys, ["dose", str(patient), "--out", str(tmp_path / "file")], patient) == \
        f"output folder {tmp_path / 'file'} is a file; choose a folder as --out"
    assert refused(capsys, ["dose", str(tmp_path / "nobody"), "--out", str(tmp_path / "o")]) == \
        f"patient folder not found: {tmp_path / 'nobody'}"
    assert "argument --next-activity-gbq" in refused(
        capsys, ["dose", str(patient), "--out", str(tmp_path / "o"), "--next-activity-gbq", "-1"])


def _first_cycle(manifest) -> dict:
    return next(v for v in manifest["sessions"] if v.get("kind") == "cycle")


def _other_patients_spect(path: Path) -> None:
    ds = pydicom.dcmread(path)
    ds.PatientID = "SOMEONE-ELSE"
    ds.save_as(path)


def _set_hours(value):
    return lambda manifest, folder: _first_cycle(manifest)["spect"][0].update(hours_post_injection=value)


@pytest.mark.parametrize("command", ["dose", "lobequant"])
@pytest.mark.parametrize(("edit", "expected"), [
    (_set_hours("24 h"), "has hours_post_injection '24 h'; give the scan time after injection as a number of "
                         "hours >= 0, e.g. 24.0"),
    (_set_hours(-4.0), "has hours_post_injection -4.0; give the scan time"),
    (_set_hours(True), "has hours_post_injection True; give the scan time"),
    (lambda manifest, folder: _first_cycle(manifest)["spect"][0].pop("file"),
     "SPECT 1 has no 'file' (the image path relative to the patient folder)"),
    (lambda manifest, folder: manifest["administrations"][0].update(activity_mbq="7.4 GBq"),
     "administration 1: activity_mbq '7.4 GBq' is not a positive number of MBq; write it as e.g. 7400.0"),
    (lambda manifest, folder: _first_cycle(manifest).update(cycle="first"),
     "cycle 'first' is not a treatment cycle number; write it as e.g. 1"),
    (lambda manifest, folder: _first_cycle(manifest)["spect"][0].update(file="ct"),
     "ct: a CT series, not a SPECT; point at the reconstructed quantitative SPECT"),
    (lambda manifest, folder: _other_patients_spect(folder / _first_cycle(manifest)["spect"][0]["file"]),
     "spect.dcm: DICOM PatientID 'SOMEONE-ELSE' differs from"),
], ids=["hours-text", "hours-negative", "hours-boolean", "no-file", "activity-text", "cycle-text", "ct-as-spect",
        "other-patient"])
def test_patient_manifest_faults_name_the_field_and_the_fix(patient, tmp_path, capsys, command, edit, expected):
    folder = _patient_copy(patient, tmp_path / "p", edit)
    extra = ["--no-voxel-dose"] if command == "dose" else []
    message = refused(capsys, [command, str(folder), "--out", str(tmp_path / "out"), *extra], folder)
    assert expected in message
    assert not (tmp_path / "out").exists()


# --- measure, phantom -----------------------------------------------------------------------------

def test_measure_faults(patient, files, tmp_path, capsys):
    seg = files["seg"]
    assert refused(capsys, ["measure", str(tmp_path / "nobody"), "--out", str(tmp_path / "m.csv")]).startswith(
        f"'{tmp_path / 'nobody'}': give a patient folder, or segmentations as DATE:PATH")
    assert refused(capsys, ["measure", f"2024-01-08:{seg}", f"2024-01-08:{seg}", "--out",
                            str(tmp_path / "m.csv")], seg) == "patient P1: two visits on one date; give one " \
                                                              "segmentation per date"
    assert refused(capsys, ["measure", str(patient), "--out", str(tmp_path)], patient) == \
        f"{tmp_path} is a folder; give a file name as --out"
    copy = tmp_path / "copy.seg.nrrd"
    shutil.copy(seg, copy)
    assert refused(capsys, ["measure", f"2024-01-08:{copy}", "--out", str(copy), "--overwrite"], copy) == \
        f"{copy}: the output would replace an input of this run; choose another --out"


def test_phantom_faults(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert refused(capsys, ["phantom", "--out", str(tmp_path / "file")], tmp_path / "file") == \
        f"--out {tmp_path / 'file'} is a file; give a folder for the synthetic patient"
    assert refused(capsys, ["phantom", "--out", str(tmp_path)], tmp_path / "file") == \
        f"--out {tmp_path} holds other files; give a new or empty folder for the synthetic patient"
    assert "argument --cycles: must be at least 1, got 0" in refused(
        capsys, ["phantom", "--out", str(tmp_path / "p"), "--cycles", "0"])


# --- cohort, demo ---------------------------------------------------------------------------------

def test_cohort_and_demo_faults(tmp_path, capsys):
    assert refused(capsys, ["cohort", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == \
        f"study folder not found: {tmp_path / 'nowhere'}"
    assert refused(capsys, ["cohort", "--status", "--out", str(tmp_path / "o")]) == \
        f"{tmp_path / 'o'} holds no cohort run to report on (no cohort.json); give the study folder"
    assert refused(capsys, ["cohort", "--out", str(tmp_path / "o")]) == \
        "give the study folder (STUDY), or --status to see what a run into --out has done"
    assert "argument --jobs: must be at least 1, got 0" in refused(
        capsys, ["cohort", str(tmp_path), "--out", str(tmp_path / "o"), "--jobs", "0"])
    assert "argument --patients: must be at least 1, got 0" in refused(
        capsys, ["demo", "--out", str(tmp_path / "d"), "--patients", "0"])
