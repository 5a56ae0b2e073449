"""Cohort batch over a small synthetic study with a known IA effect: tables, analyses, report, resume.

The fault tests run the real ``luprrt cohort`` in a child process and stop it the way users
and batch systems do (Ctrl-C to the process group, SIGKILL of the parent, SIGTERM, a worker
killed, a second run into the same folder), then check the exit status, the one stderr line,
that no process is left and that a resumed run gives byte for byte the uninterrupted result.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from luprrt.cli import main
from luprrt.cohort.browser import check_page, find_chromium, print_pdf, screenshot
from luprrt.outputs import StagedFolder
from luprrt.provenance import file_sha256
from luprrt.workflows.cohort import (
    DONE_MARKER,
    LOCK_FILE,
    _lock_owner,
    cohort_status,
    discover_patients,
    make_demo_cohort,
    patient_output,
    run_cohort,
)

IA_TN_FACTOR = 2.5
# The command line's options for --no-voxel-dose, so that the reference run and CLI runs write the same records.
# The partial-volume correction uses the synthetic SPECT's known 12 mm resolution, as the demo does.
OPTIONS = {"occupancy": "fractional", "voxel_dose": False, "pvc_fwhm_mm": 12.0}
EPOCH = "1700000000"  # SOURCE_DATE_EPOCH: provenance times fixed, so whole folders can be compared byte by byte
# Generous waits: the machine is shared; a worker needs a few seconds to import the core.
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    make_demo_cohort(folder, 3, seed=20, ia_tn_factor=IA_TN_FACTOR)
    return folder


@pytest.fixture(scope="module")
def cohort(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    fractions = []
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    try:
        run = run_cohort(study, out, jobs=2, options=OPTIONS,
                         progress=lambda fraction, message: fractions.append(fraction))
    finally:
        if previous is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous
    return run, out, fractions


def test_study_discovery_reads_the_manifest(study):
    entries = discover_patients(study)
    assert [e.ia_side for e in entries] == ["right", "left", "right"]
    assert all((e.folder / "manifest.json").is_file() for e in entries)


def test_every_lesion_has_a_row_per_cycle_with_tn_dose_and_features(cohort, study):
    run, out, fractions = cohort
    assert len(run.processed) == 3 and not run.skipped
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    lesions = pd.read_csv(out / "lesion_table.csv")
    # One row per lesion and cycle at which the lesion still has voxels (the dose-driven shrinkage of the demo
    # study can take a small lesion below one voxel before the last cycle).
    present = 0
    for entry in discover_patients(study):
        truth = json.loads((entry.folder / "truth.json").read_text())
        present += sum(truth["volumes_ml"][f"cycle{c}"][le["lesion_id"]] > 0
                       for c in range(1, 5) for le in truth["lesions"])
    assert len(lesions) == present
    for column in ("tn_mean", "tumour_dose_gy", "cumulative_tumour_dose_gy", "fdg_suvmax", "adc_mean_mm2_per_s",
                   "diameter_change_pct", "lesion_response"):
        assert lesions[column].notna().all(), column
    cumulative = lesions.sort_values("cycle").groupby(["patient_id", "lesion_id"])
    assert cumulative["cumulative_tumour_dose_gy"].last().to_numpy() == pytest.approx(
        cumulative["tumour_dose_gy"].sum().to_numpy(), rel=1e-12)


def test_primary_analysis_sees_the_built_in_ia_effect(cohort):
    _, out, _ = cohort
    primary = pd.read_csv(out / "primary_ia_iv.csv").iloc[0]
    assert primary["n_patients"] == 3
    # Built-in IA/IV lesion uptake factor 2.5; blur and partial volume dilute it but keep its direction.
    assert 1.3 < primary["ratio_ia_iv"] < IA_TN_FACTOR
    assert primary["share_increased"] == 1.0


def test_primary_is_the_trial_definition_with_labelled_sensitivity_analyses(cohort):
    """Up to 3 target lesions > 30 mm per lobe (largest first); all lesions and size-matched beside it."""
    _, out, _ = cohort
    lesions = pd.read_csv(out / "lesion_table.csv")
    cycle1 = lesions[lesions["cycle"] == 1]
    targets = cycle1[cycle1["target_lesion"]]
    assert (targets["longest_diameter_mm"] > 30.0).all()
    assert targets.groupby(["patient_id", "side"]).size().max() <= 3
    # The targets are the largest lesions of their lobe, ranked from 1.
    for (_, _), lobe in cycle1.groupby(["patient_id", "side"]):
        chosen = lobe[lobe["target_lesion"]].sort_values("target_rank")
        largest = lobe[lobe["longest_diameter_mm"] > 30.0].nlargest(3, "longest_diameter_mm")
        assert list(chosen["lesion_id"]) == list(largest["lesion_id"])
    endpoints = pd.read_csv(out / "ia_iv_endpoints.csv")
    assert list(endpoints["analysis"]) == [
        "primary (trial definition: up to 3 target lesions > 30 mm per lobe)", "sensitivity: all lesions",
        "sensitivity: size-matched lesions (IA-IV pairs within a volume ratio of 2)"]
    primary = pd.read_csv(out / "primary_ia_iv.csv").iloc[0]
    assert primary["n_lesions_ia"] + primary["n_lesions_iv"] == len(targets)
    everything = pd.read_csv(out / "ia_iv_sensitivity_all_lesions.csv").iloc[0]
    assert everything["n_lesions_ia"] + everything["n_lesions_iv"] == len(cycle1)
    matched = pd.read_csv(out / "ia_iv_sensitivity_size_matched.csv").iloc[0]
    assert matched["n_lesions_ia"] == matched["n_lesions_iv"]  # pairs


def test_report_is_self_contained_with_every_section(cohort):
    run, _, _ = cohort
    html = run.report.read_text()
    text = unescape(html)  # the page escapes what it shows (apostrophes, ampersands)
    for heading in ("trial's definition", "All lesions", "Table 1. Patient characteristics", "IA vs IV by cycle",
                    "uptake", "absorbed dose by lobe", "Tumour response by route", "Dose-response by route",
                    "Toxicity (CTCAE v5.0)", "Intra- and inter-patient differences", "exploratory",
                    "Response (RECIST 1.1"):
        assert heading in text, heading
    assert html.count("data:image/png;base64,") >= 8
    assert "http" not in html.split("<h2>Provenance</h2>")[0]
    # Estimates read "value (95 % CI low-high), p = ...".
    assert re.search(r"\d\.\d\d \(95 % CI \d\.\d\d-\d\.\d\d\), p [=<] ", text)


def test_provenance_lists_every_input_file_with_its_sha256(cohort, study):
    run, _, _ = cohort
    html = run.report.read_text()
    labs = study / "labs.csv"
    assert f"<td>{labs}</td><td>{file_sha256(labs)}</td>" in html
    spect = next(study.glob("patient_01/cycle1/spect_24h/spect.dcm"))
    assert f"<td>{spect}</td><td>{file_sha256(spect)}</td>" in html
    assert "Partial-volume correction of region activities with a 12 mm FWHM" in unescape(html)


def test_lesion_table_has_imaging_after_each_cycle_and_relative_changes(cohort, study):
    _, out, _ = cohort
    lesions = pd.read_csv(out / "lesion_table.csv")
    for name in ("fdg_suvmax", "ga68_suvmax", "adc_mean_mm2_per_s"):
        # measured wherever the lesion still has voxels at the visit after the cycle
        assert lesions[f"{name}_after_cycle"].notna().mean() > 0.95, name
        assert lesions[f"{name}_change_pct"].to_numpy() == pytest.approx(
            100.0 * (lesions[f"{name}_after_cycle"] / lesions[name] - 1.0).to_numpy(), rel=1e-12, nan_ok=True)
    # Uptake falls with dose by construction: the FDG SUVmax of the largest lesions drops after cycle 4.
    big = lesions[(lesions["cycle"] == 4) & (lesions["baseline_longest_diameter_mm"] > 30)]
    assert (big["fdg_suvmax_change_pct"] < 0).all()
    aucs = pd.read_csv(out / "imaging_change_auc.csv")
    assert set(aucs["cycle"]) <= {1, 2, 3, 4} and aucs["auc"].between(0, 1).all()


def test_icc_table_splits_log_tn_variance_per_cycle(cohort):
    _, out, _ = cohort
    icc = pd.read_csv(out / "tn_variance_components.csv")
    assert list(icc["cycle"]) == [1, 2, 3, 4]
    parts = icc[["variance_patient", "variance_lesion", "variance_residual"]]
    assert (parts >= 0).all().all()
    assert icc["icc_patient"].to_numpy() == pytest.approx((parts["variance_patient"] / parts.sum(axis=1)).to_numpy())
    # Lesion T/N draws vary 0.4 in log between lesions by construction: the lesion term dominates the residual.
    assert (icc["variance_lesion"] > icc["variance_residual"]).all()


def _truth(study):
    patient = discover_patients(study)[0].folder
    return json.loads((patient / "truth.json").read_text())


def test_dose_toxicity_recovers_the_built_in_kidney_relation(cohort, study):
    _, out, _ = cohort
    slopes = pd.read_csv(out / "dose_toxicity.csv").set_index("quantity")
    egfr = slopes.loc["eGFR slope per Gy of cumulative kidney BED"]
    kappa = _truth(study)["toxicity_model"]["egfr_slope_per_year_per_gy_bed"]
    assert egfr["ci_low"] <= kappa <= egfr["ci_high"]
    # The built-in platelet relation is per Gy of TRUE (blood-based) marrow dose; the patients have blood
    # samples, so the cohort relates toxicity to the measured blood-based dose, within 10 % of the truth
    # (EANM, Hindorf et al. 2010); the truth per measured Gy is a / ratio.
    measured = pd.read_csv(out / "organ_doses.csv")
    assert set(measured["marrow_dose_method"]) == {"blood_based_eanm"}
    true = pd.DataFrame([{"patient_id": e.patient_id, "cycle": d["cycle"], "true": d["marrow_dose_gy"]}
                         for e in discover_patients(study)
                         for d in json.loads((e.folder / "truth.json").read_text())["organ_doses"]])
    ratio = float((measured.merge(true, on=["patient_id", "cycle"]).eval("marrow_dose_gy / true")).median())
    assert 0.9 < ratio < 1.1
    # Three patients vary their marrow dose too little against its measurement noise for a sharp estimate
    # (errors in the dose attenuate the slope): the direction and the magnitude within a factor 2 are checked.
    platelets = slopes.loc["Platelet nadir: ln(nadir / pre-cycle) per Gy of marrow dose"]
    a = _truth(study)["toxicity_model"]["platelet_nadir_log_per_gy"] / ratio
    assert platelets["ci_high"] < 0 and 0.5 < platelets["slope"] / a < 2.0
    # The lymphocytes fall twice as steeply: their relation is recovered within its interval.
    lymphocytes = slopes.loc["Lymphocyte nadir: ln(nadir / pre-cycle) per Gy of marrow dose"]
    b = _truth(study)["toxicity_model"]["lymphocyte_nadir_log_per_gy"] / ratio
    assert lymphocytes["ci_low"] <= b <= lymphocytes["ci_high"]
    # Every lab value is graded; the worst grade per cycle never exceeds the patient's worst grade.
    graded = pd.read_csv(out / "labs_graded.csv")
    assert graded["grade"].between(0, 4).all()
    per_cycle = pd.read_csv(out / "worst_grade_per_cycle.csv").groupby(["patient_id", "test"])["worst_grade"].max()
    per_patient = pd.read_csv(out / "worst_grade_per_patient.csv").set_index(["patient_id", "test"])["worst_grade"]
    assert (per_cycle == per_patient.reindex(per_cycle.index)).all()


def test_response_by_route_recovers_the_built_in_dose_response(cohort, study):
    _, out, _ = cohort
    effects = pd.read_csv(out / "response_by_route.csv").set_index("effect")
    slope = effects.loc["ln(diameter ratio) per ln(cumulative dose)"]
    truth = _truth(study)
    weeks = 11.0 * 3 + 26.0  # cycle 1 to the last follow-up
    built_in = -truth["dose_response_model"]["dose_coefficient_per_week"] * weeks
    assert slope["ci_low"] <= built_in <= slope["ci_high"]
    route = effects.loc["IA vs IV: difference of ln(last / baseline diameter)"]
    # IA lesions get ia_tn_factor x the dose, so they end smaller by built_in x ln(factor) on the log scale.
    expected = built_in * np.log(truth["ia_tn_factor"])
    assert route["ci_low"] <= expected <= route["ci_high"]
    lobes = pd.read_csv(out / "lobe_response.csv")
    assert set(lobes["response"]) <= {"CR", "PR", "SD", "PD"} and set(lobes["route"]) == {"IA", "IV"}


def test_every_patient_has_a_page_with_images_and_its_lesions(cohort, study):
    run, out, _ = cohort
    for entry in discover_patients(study):
        page = (out / "patients" / f"{entry.patient_id}.html").read_text()
        assert page.count("data:image/png;base64,") >= 3  # CT + SPECT, time-activity curves, RECIST timeline
        assert "<th>Lesion</th>" in page and "L01" in page
        assert f'href="patients/{entry.patient_id}.html"' in run.report.read_text()


@pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed (Debian package chromium; "
                                                    "make system-deps installs it)")
def test_report_opens_in_chromium_without_errors_broken_images_or_overflow(cohort, tmp_path):
    run, out, _ = cohort
    for page in (run.report, next((out / "patients").glob("*.html"))):
        result = check_page(page, width_px=1280)
        assert result["errors"] == [], page
        assert result["n_images"] >= 3 and result["broken_images"] == [], page
        assert result["scroll_width"] <= result["window_width"] and result["overflowing"] == [], page
    png = screenshot(run.report, tmp_path / "first_page.png")
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 20_000
    pdf = print_pdf(run.report, tmp_path / "report.pdf")
    data = pdf.read_bytes()
    # Table 1 starts a new printed page, so the report prints on several pages.
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 2


def test_rerun_finds_every_patient_done_and_the_analysis_up_to_date(cohort, study):
    _, out, _ = cohort
    before = _snapshot(out)
    again = run_cohort(study, out, jobs=1)
    assert again.processed == [] and len(again.skipped) == 3 and again.analysis_up_to_date
    assert _snapshot(out) == before
    status = cohort_status(out)
    assert status.done == [e.patient_id for e in discover_patients(study)] and status.analysis == "up to date"


def test_status_names_the_patients_in_progress_apart_from_pending_and_done(study, tmp_path, capsys):
    """In progress = a live process is building the patient's folder; a dead run's leftover is pending."""
    out = tmp_path / "out"
    done, running, interrupted = discover_patients(study)
    (patient_output(out, done)).mkdir(parents=True)
    (patient_output(out, done) / DONE_MARKER).write_text("{}")
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # its PID now names no live process
    with StagedFolder(patient_output(out, running)) as staged:
        leftover = staged.path.with_name(staged.path.name.replace(f"{running.patient_id}.", f"{interrupted.patient_id}.")
                                         .replace(f"-{os.getpid()}-", f"-{finished.pid}-"))
        leftover.mkdir()
        status = cohort_status(out, study)
        assert status.in_progress == {running.patient_id: os.getpid()}
        assert status.done == [done.patient_id] and status.pending == [running.patient_id, interrupted.patient_id]
        assert main(["cohort", str(study), "--status", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{out}: 1 of 3 patients done, 1 in progress"
    assert lines[1:4] == [f"  done     {done.patient_id}", f"  running  {running.patient_id} (worker PID {os.getpid()})",
                          f"  pending  {interrupted.patient_id}"]
    assert cohort_status(out, study).in_progress == {}  # the staging folder is gone with its owner's work


def test_redoing_finished_patients_needs_overwrite(cohort, study):
    _, out, _ = cohort
    done_before = sorted(p.stat().st_mtime_ns for p in (out / "patients").glob("*/done.json"))
    assert len(done_before) == 3
    first = discover_patients(study)[0].patient_id
    with pytest.raises(FileExistsError, match=rf"patients \['{first}'.*would be redone; pass overwrite=True"):
        run_cohort(study, out, jobs=1, resume=False, analyse=False)
    assert sorted(p.stat().st_mtime_ns for p in (out / "patients").glob("*/done.json")) == done_before


def test_bad_study_inputs_are_named(tmp_path):
    with pytest.raises(NotADirectoryError, match="study folder not found"):
        discover_patients(tmp_path / "missing")
    with pytest.raises(ValueError, match="no patients in"):
        discover_patients(tmp_path)
    (tmp_path / "manifest.csv").write_text("patient_id,folder\nP1,p1\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['ia_side'\]"):
        discover_patients(tmp_path)


# --- faults -------------------------------------------------------------------------------------

def _snapshot(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (the lock file is no result: it is left out)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != LOCK_FILE}


def _children(pid: int) -> list[int]:
    """PIDs of the live child processes of ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def _start_cohort(study: Path, out: Path, *extra: str) -> subprocess.Popen:
    """``luprrt cohort`` as a child in its own process group (as a shell runs a command)."""
    command = [sys.executable, "-m", "luprrt.cli", "cohort", str(study), "--out", str(out), "--no-voxel-dose", "--pvc-fwhm-mm", "12",
               *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "SOURCE_DATE_EPOCH": EPOCH})


def _workers_started(process: subprocess.Popen, count: int) -> list[int]:
    """Wait until ``count`` worker processes of the cohort run and return them (resource tracker excluded)."""
    def workers():
        return [pid for pid in _children(process.pid)
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    _wait(lambda: len(workers()) >= count or process.poll() is not None, START_TIMEOUT_S, "the workers")
    assert process.poll() is None, process.communicate()
    return workers()


def _finish(process: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> tuple[int, list[str]]:
    _, err = process.communicate(timeout=timeout)
    return process.returncode, [line for line in err.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def study_hash(study):
    return _snapshot(study)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find worker processes")
def test_ctrl_c_stops_the_workers_keeps_nothing_half_written_and_says_how_to_resume(study, study_hash, tmp_path):
    out = tmp_path / "out"
    process = _start_cohort(study, out, "--jobs", "2")
    workers = _workers_started(process, 2)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
    status, err = _finish(process)
    assert status == 2
    assert err == [f"luprrt cohort: error: interrupted; 0 of 3 patients are done and kept in {out}: run the same "
                   "command again to resume"]
    _wait(lambda: not any(_alive(pid) for pid in workers), STOP_TIMEOUT_S, "the workers to stop")
    assert not list((out / "patients").glob("[!.]*"))  # no patient folder appeared half-written
    assert _lock_owner(out) is None
    assert _snapshot(study) == study_hash


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find worker processes")
def test_killing_the_parent_stops_its_workers_and_frees_the_output_folder(study, study_hash, tmp_path, capsys):
    out = tmp_path / "out"
    process = _start_cohort(study, out, "--jobs", "2")
    workers = _workers_started(process, 2)
    process.kill()  # SIGKILL: no handler runs in the parent
    process.communicate(timeout=STOP_TIMEOUT_S)
    _wait(lambda: not any(_alive(pid) for pid in workers), STOP_TIMEOUT_S, "the orphaned workers to stop")
    assert _lock_owner(out) is None
    assert main(["cohort", "--status", "--out", str(out)]) == 0
    assert "0 of 3 patients done" in capsys.readouterr().out
    assert _snapshot(study) == study_hash


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find worker processes")
def test_a_second_run_into_the_same_folder_is_refused_naming_the_first(study, tmp_path, capsys):
    out = tmp_path / "out"
    first = _start_cohort(study, out, "--jobs", "2")
    _workers_started(first, 1)
    _wait(lambda: cohort_status(out, study).in_progress, START_TIMEOUT_S, "a patient in progress")
    assert set(cohort_status(out, study).in_progress.values()) <= set(_children(first.pid))  # its workers
    assert main(["cohort", str(study), "--out", str(out), "--jobs", "1"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [f"luprrt cohort: error: another luprrt cohort run (PID {first.pid}) is writing into {out}; "
                   "wait for it to finish or stop it, or choose another output folder"]
    first.terminate()  # SIGTERM, as a batch system stops a job: handled like Ctrl-C
    status, first_err = _finish(first)
    assert status == 2 and len(first_err) == 1 and "interrupted; 0 of 3 patients are done" in first_err[0]


def test_a_killed_worker_is_reported_for_its_patient_and_does_not_hang_the_run(study, tmp_path):
    stop = threading.Event()

    def kill_workers():
        while not stop.is_set():
            for child in multiprocessing.active_children():
                if child.name.startswith("luprrt-") and child.pid:
                    os.kill(child.pid, signal.SIGKILL)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_workers, daemon=True)
    killer.start()
    try:
        with pytest.raises(ValueError, match=r"^3 of 3 patients failed \(LUPRRT-SYN-0020: its worker process was "
                                             r"killed \(SIGKILL\); run the command again to redo it;"):
            run_cohort(study, tmp_path / "out", jobs=2, options=OPTIONS)
    finally:
        stop.set()
        killer.join()
    assert set(cohort_status(tmp_path / "out").failed) == {e.patient_id for e in discover_patients(study)}


def test_a_resumed_run_is_byte_identical_to_an_uninterrupted_one(study, cohort, tmp_path):
    """Two patients finished, the third killed mid-way, the analysis interrupted: resuming gives the same bytes."""
    _, reference, _ = cohort
    out = tmp_path / "out"
    entries = discover_patients(study)
    for entry in entries[:2]:
        shutil.copytree(reference / "patients" / entry.patient_id, out / "patients" / entry.patient_id)
    process = _start_cohort(study, out, "--jobs", "2")  # one patient left: it runs in the main process
    _wait(lambda: any((out / "patients").glob(f".{entries[2].patient_id}.luprrt-partial-*")) or
          process.poll() is not None, START_TIMEOUT_S, "the third patient to start")
    process.kill()
    process.communicate(timeout=STOP_TIMEOUT_S)
    assert not (out / "patients" / entries[2].patient_id).exists()  # nothing half-written in place

    process = _start_cohort(study, out, "--jobs", "2")
    analysis_staging = f".{out.name}.luprrt-partial-*"
    _wait(lambda: any(out.parent.glob(analysis_staging)) or process.poll() is not None, 4 * START_TIMEOUT_S,
          "the cohort analysis to start")
    os.killpg(process.pid, signal.SIGINT)
    status, err = _finish(process)
    if status == 2:  # interrupted during the analysis, as intended (a fast machine may have finished it)
        assert err == [f"luprrt cohort: error: interrupted during the cohort analysis; all 3 patients are done and "
                       f"kept in {out}: run the same command again to make the analysis"]
        assert not (out / "report.html").exists()
        process = _start_cohort(study, out, "--jobs", "2")
        status, err = _finish(process, 4 * START_TIMEOUT_S)
    assert status == 0, err
    assert not list(out.parent.glob(analysis_staging)) and not list((out / "patients").glob(".*"))
    assert _snapshot(out) == _snapshot(reference)
