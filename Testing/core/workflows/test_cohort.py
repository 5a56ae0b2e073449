"""Cohort batch over a small synthetic study with a known IA effect: tables, analyses, report, resume.

The fault tests run the real ``luprrt cohort`` in a child process and stop it the way users
and batch systems do (Ctrl-C to the process group, SIGKILL of the parent, SIGTERM, a worker
killed, a second run into the same folder), then check the exit status, the one stderr line,
that no process is left and that a resumed run gives byte for byte the uninterrupted result.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from luprrt.cli import main
from luprrt.workflows.cohort import (
    LOCK_FILE,
    _lock_owner,
    cohort_status,
    discover_patients,
    make_demo_cohort,
    run_cohort,
)

IA_TN_FACTOR = 2.5
# The command line's options for --no-voxel-dose, so that the reference run and CLI runs write the same records.
OPTIONS = {"occupancy": "fractional", "voxel_dose": False}
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
    truth_lesions = sum(len(pd.read_json(e.folder / "truth.json", typ="series")["lesions"])
                        for e in discover_patients(study))
    assert len(lesions) == 4 * truth_lesions
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
    for heading in ("Primary endpoint", "IA vs IV by cycle", "uptake", "absorbed dose by lobe", "Response"):
        assert heading in html
    assert html.count("data:image/png;base64,") >= 3
    assert "http" not in html.split("<h2>Provenance</h2>")[0]


def test_rerun_finds_every_patient_done_and_the_analysis_up_to_date(cohort, study):
    _, out, _ = cohort
    before = _snapshot(out)
    again = run_cohort(study, out, jobs=1)
    assert again.processed == [] and len(again.skipped) == 3 and again.analysis_up_to_date
    assert _snapshot(out) == before
    status = cohort_status(out)
    assert status.done == [e.patient_id for e in discover_patients(study)] and status.analysis == "up to date"


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
    command = [sys.executable, "-m", "luprrt.cli", "cohort", str(study), "--out", str(out), "--no-voxel-dose",
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
