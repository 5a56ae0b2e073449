"""Batch over a whole study: every patient through LobeQuant, LesionDosimetry and ResponseAssess.

A study is a folder of patient folders (each with ``manifest.json``, the layout written by
:func:`luprrt.phantom.write_patient`), or a ``manifest.csv`` listing them
(``patient_id, folder, ia_side``). Each patient's results go to ``OUT/patients/<id>/``,
built in a staging folder and put in place whole, ending with ``done.json``: a re-run skips
finished patients (resumable), and patients run in parallel worker processes. The cohort
tables, figures and HTML report are then made by :mod:`luprrt.workflows.cohort_analysis`
(also staged, so an interrupted analysis is simply redone).

Safety of a long batch:

* One run per output folder: ``OUT/.luprrt-cohort.lock`` holds the owner's PID under an
  exclusive lock (released by the kernel when the owner dies, so a killed run never blocks
  the next one); a second run into the same ``OUT`` is refused, naming that PID.
* Workers stop when their parent dies (they watch its PID), so a killed cohort leaves no
  process behind and no half-written patient (its staging folder is removed by the next run).
* Ctrl-C or SIGTERM stops the workers, keeps the finished patients and says how to resume.
* A patient that fails does not stop the others; the failures are listed at the end (and in
  ``OUT/cohort.json``), and the analysis waits until every patient is done.
* Each worker's log (warnings included) goes to the patient's ``log.txt``, not the terminal.
* :func:`cohort_status` tells what is done, in progress (a live worker is building the patient's
  folder) or still to do (``luprrt cohort --status``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from pathlib import Path

from ..errors import Interrupted, current_option_words, fix, option_words
from ..outputs import StagedFolder, remove_stale_staging, staging_owners
from ..provenance import ProgressCallback, file_sha256, no_progress, provenance_record
from ..segments import SIDES
from .manifest import read_manifest

log = logging.getLogger(__name__)

DONE_MARKER = "done.json"
LOCK_FILE = ".luprrt-cohort.lock"
STATE_FILE = "cohort.json"
PATIENT_LOG = "log.txt"
# How often a worker checks that its parent is alive, s.
_PARENT_WATCH_S = 0.5


@dataclass(frozen=True)
class PatientEntry:
    """One patient of a study: id, folder and the hepatic artery side of the IA injection."""

    patient_id: str
    folder: Path
    ia_side: str


def discover_patients(study: str | Path) -> list[PatientEntry]:
    """The patients of a study folder (``manifest.csv`` if present, else sub-folders with manifest.json)."""
    study = Path(study)
    if not study.is_dir():
        raise NotADirectoryError(f"study folder not found: {study}")
    listing = study / "manifest.csv"
    if listing.is_file():
        entries = _entries_from_csv(listing)
    else:
        entries = []
        for folder in sorted(p for p in study.iterdir() if (p / "manifest.json").is_file()):
            manifest = read_manifest(folder)
            entries.append(PatientEntry(manifest["patient_id"], folder, manifest.get("ia_side", "")))
    if not entries:
        raise ValueError(f"no patients in {study}: expected manifest.csv or patient folders with manifest.json")
    for entry in entries:
        if entry.ia_side not in SIDES:
            raise ValueError(f"patient {entry.patient_id}: IA side {entry.ia_side!r} must be one of {SIDES} "
                             "(set ia_side in manifest.csv or the patient's manifest.json)")
    duplicated = sorted(pid for pid, n in Counter(e.patient_id for e in entries).items() if n > 1)
    if duplicated:
        raise ValueError(f"patient ids listed more than once in {study}: {duplicated}")
    return entries


def _entries_from_csv(listing: Path) -> list[PatientEntry]:
    with open(listing, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"patient_id", "folder", "ia_side"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{listing}: missing column(s) {sorted(missing)}")
        entries = []
        for line, row in enumerate(reader, start=2):
            folder = (listing.parent / row["folder"]).resolve()
            if not (folder / "manifest.json").is_file():
                raise FileNotFoundError(f"{listing} line {line}: no manifest.json in {folder}")
            entries.append(PatientEntry(row["patient_id"], folder, row["ia_side"].strip().lower()))
    return entries


def patient_output(out_dir: Path, entry: PatientEntry) -> Path:
    """The output folder of one patient inside a cohort run."""
    return Path(out_dir) / "patients" / entry.patient_id


def is_done(out_dir: Path, entry: PatientEntry) -> bool:
    """True when the patient's analysis finished in an earlier run (its done marker exists)."""
    return (patient_output(out_dir, entry) / DONE_MARKER).is_file()


def process_patient(entry: PatientEntry, out_dir: str | Path, options: dict | None = None,
                    overwrite: bool = False) -> Path:
    """Run one patient through the three analyses; returns its output folder.

    Writes ``lobequant/``, ``dose/``, ``measurements.csv``, ``tracking_events.csv``,
    ``lesion_features.csv``, ``after_cycle_features.csv``, ``log.txt`` and, last, ``done.json``
    into a staging folder that replaces ``OUT/patients/<id>`` only when all of them are written
    (``overwrite`` allows replacing a finished patient's folder). Options: ``occupancy``,
    ``voxel_dose``, ``pvc_fwhm_mm`` (SPECT resolution for the partial-volume correction of region
    activities; None = none).
    """
    from ..liver import TRIAL_MIN_DIAMETER_MM, TRIAL_TARGETS_PER_LOBE
    from ..tables import write_rows_csv
    from .calibrate import load_calibration
    from .dose import run_patient_dosimetry
    from .dose_cycle import DosimetryOptions
    from .features import after_cycle_lesion_features, baseline_lesion_features
    from .lobequant import run_lobequant
    from .response import measure_patient

    options = dict(options or {})
    with StagedFolder(patient_output(Path(out_dir), entry), overwrite=overwrite) as staged, \
            _patient_log(staged.path / PATIENT_LOG):
        target = staged.path
        calibration = load_calibration(options.get("calibration"))
        run_lobequant(entry.folder, ia_side=entry.ia_side, out_dir=target / "lobequant",
                      occupancy=options.get("occupancy", "fractional"), calibration=calibration,
                      target_lesions=options.get("target_lesions", TRIAL_TARGETS_PER_LOBE),
                      target_min_diameter_mm=options.get("target_min_diameter_mm", TRIAL_MIN_DIAMETER_MM))
        run_patient_dosimetry(entry.folder, out_dir=target / "dose", voxel_dose=options.get("voxel_dose", True),
                              options=DosimetryOptions(pvc_fwhm_mm=options.get("pvc_fwhm_mm"),
                                                       site_calibration=calibration))
        measured = measure_patient(entry.folder)
        write_rows_csv(measured.measurements, target / "measurements.csv")
        if measured.tracking_events:
            write_rows_csv(measured.tracking_events, target / "tracking_events.csv")
        features = baseline_lesion_features(entry.folder)
        if features:
            write_rows_csv(features, target / "lesion_features.csv")
        after_cycle = after_cycle_lesion_features(entry.folder)
        if after_cycle:
            write_rows_csv(after_cycle, target / "after_cycle_features.csv")
        record = provenance_record({"patient_folder": str(entry.folder)}, {"ia_side": entry.ia_side, **options})
        (target / DONE_MARKER).write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
        return staged.commit()


@contextlib.contextmanager
def _patient_log(path: Path) -> Iterator[None]:
    """Log records of this patient (INFO and up) into ``path`` while the block runs."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    try:
        yield
    finally:
        root.setLevel(level)
        root.removeHandler(handler)
        handler.close()


@dataclass
class CohortRun:
    """What a cohort run did: patients processed now, skipped (already done) and the outputs."""

    processed: list[str]
    skipped: list[str]
    out_dir: Path
    report: Path | None = None
    analysis_up_to_date: bool = False


@dataclass
class CohortStatus:
    """What a cohort output folder holds (:func:`cohort_status`)."""

    out_dir: Path
    study: Path | None
    done: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    running_pid: int | None = None
    analysis: str = "not made"
    # Pending patients whose output folder a live process is building now: patient id -> its PID.
    in_progress: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The status as text lines for a terminal."""
        total = len(self.done) + len(self.pending)
        lines = [f"{self.out_dir}: {len(self.done)} of {total} patients done"
                 + (f", {len(self.in_progress)} in progress" if self.in_progress else "")
                 + (f", {len(self.failed)} failed" if self.failed else "")
                 + (f"; a run (PID {self.running_pid}) is writing now" if self.running_pid else "")]
        lines += [f"  done     {pid}" for pid in self.done]
        lines += [self._pending_line(pid) for pid in self.pending]
        lines.append(f"cohort analysis: {self.analysis}")
        return lines

    def _pending_line(self, patient_id: str) -> str:
        if patient_id in self.in_progress:
            return f"  running  {patient_id} (worker PID {self.in_progress[patient_id]})"
        if patient_id in self.failed:
            return f"  failed   {patient_id}: {self.failed[patient_id]}"
        return f"  pending  {patient_id}"


def cohort_status(out_dir: str | Path, study: str | Path | None = None) -> CohortStatus:
    """Which patients of the study are done, in progress, pending or failed, and whether the analysis is current.

    ``study`` defaults to the one the last run into ``out_dir`` recorded.
    """
    out_dir = Path(out_dir)
    state = _read_state(out_dir)
    if study is None:
        if not state.get("study"):
            raise FileNotFoundError(f"{out_dir} holds no cohort run to report on (no {STATE_FILE}); give the "
                                    "study folder")
        study = Path(state["study"])
    entries = discover_patients(study)
    status = CohortStatus(out_dir, Path(study), running_pid=_lock_owner(out_dir))
    for entry in entries:
        (status.done if is_done(out_dir, entry) else status.pending).append(entry.patient_id)
        owners = [] if is_done(out_dir, entry) else staging_owners(patient_output(out_dir, entry))
        if owners:
            status.in_progress[entry.patient_id] = owners[0]
    status.failed = {pid: text for pid, text in state.get("failed", {}).items() if pid in status.pending}
    analysis = _analysis_state(out_dir, entries)
    status.analysis = {"current": "up to date", "stale": "made from other patient results: redo it with "
                       "--overwrite", "missing": "not made yet"}[analysis]
    return status


def run_cohort(study: str | Path, out_dir: str | Path, *, jobs: int = 2, resume: bool = True,
               overwrite: bool = False, options: dict | None = None, analyse: bool = True,
               progress: ProgressCallback | None = None) -> CohortRun:
    """Process every patient of ``study`` into ``out_dir`` and write the cohort analysis.

    Parameters
    ----------
    jobs : parallel worker processes (1 = in this process)
    resume : skip patients whose ``done.json`` exists
    overwrite : allow replacing the cohort tables, figures and report of an earlier run made from
        other patient results, and (with ``resume=False``) the outputs of patients that finished before
    options : per-patient options (``occupancy``, ``voxel_dose``, ``calibration``: a site-calibration
        file, ``target_lesions`` and ``target_min_diameter_mm``: the trial endpoint's targets)

    Raises
    ------
    ValueError
        Another run holds ``out_dir``, or patients failed (all named; the others are kept).
    luprrt.errors.Interrupted
        Ctrl-C or SIGTERM: the workers are stopped, finished patients kept.
    """
    progress = progress or no_progress
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    out_dir = Path(out_dir)
    entries = discover_patients(study)
    pending = [e for e in entries if not (resume and is_done(out_dir, e))]
    skipped = [e.patient_id for e in entries if e not in pending]
    finished = [e.patient_id for e in pending if is_done(out_dir, e)]
    if finished and not overwrite:
        raise FileExistsError(f"{out_dir}: patients {finished} finished in an earlier run and would be redone; "
                              f"{fix('overwrite', 'True') or 'keep them'} to replace their outputs")
    out_dir.mkdir(parents=True, exist_ok=True)
    with _cohort_lock(out_dir), _stop_on_sigterm():
        remove_stale_staging(out_dir / "patients")
        remove_stale_staging(out_dir)
        state = _read_state(out_dir)
        state.update(study=str(Path(study).resolve()), failed={})
        _write_state(out_dir, state)
        if skipped:
            log.info("resuming: %d patients already done (%s)", len(skipped), ", ".join(skipped))
        share = 0.85 if analyse else 1.0
        progress(0.0, f"{len(pending)} patients to process, {len(skipped)} done before")
        try:
            failed = _process_all(pending, out_dir, options, jobs,
                                  lambda done, message: progress(share * done / max(len(pending), 1), message))
        except KeyboardInterrupt:
            kept = sum(is_done(out_dir, e) for e in entries)
            raise Interrupted(f"interrupted; {kept} of {len(entries)} patients are done and kept in {out_dir}: "
                              "run the same command again to resume") from None
        if failed:
            state["failed"] = failed
            _write_state(out_dir, state)
            listing = "; ".join(f"{pid}: {text}" for pid, text in sorted(failed.items())[:5])
            more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
            raise ValueError(f"{len(failed)} of {len(entries)} patients failed ({listing}{more}); the others are "
                             f"done and kept in {out_dir}: correct the inputs and run the command again to resume "
                             "(the cohort analysis waits for every patient)")
        run = CohortRun([e.patient_id for e in pending], skipped, out_dir)
        if analyse:
            try:
                run.report, run.analysis_up_to_date = _analysis(
                    out_dir, entries, overwrite, lambda f, m: progress(share + (1 - share) * f, m),
                    study=Path(study), options=options, jobs=jobs)
            except KeyboardInterrupt:
                raise Interrupted(f"interrupted during the cohort analysis; all {len(entries)} patients are done "
                                  f"and kept in {out_dir}: run the same command again to make the analysis"
                                  ) from None
    progress(1.0, "cohort done")
    return run


def _analysis(out_dir: Path, entries: list[PatientEntry], overwrite: bool,
              progress: ProgressCallback, study: Path | None = None, options: dict | None = None,
              jobs: int = 1) -> tuple[Path, bool]:
    from .cohort_analysis import analyse_cohort

    state = _analysis_state(out_dir, entries)
    if state == "current":
        log.info("cohort analysis in %s is up to date", out_dir)
        return out_dir / "report.html", True
    if state == "stale" and not overwrite:
        raise FileExistsError(f"{out_dir} holds a cohort analysis made from other patient results; "
                              f"{fix('overwrite', 'True') or 'choose another output folder'} to redo it")
    report = analyse_cohort(out_dir, [e.patient_id for e in entries], overwrite=True, progress=progress,
                            marker={"patients": _fingerprint(out_dir, entries)}, study=study, options=options,
                            jobs=jobs)
    return report, False


def _fingerprint(out_dir: Path, entries: list[PatientEntry]) -> dict[str, str]:
    """SHA-256 of every patient's done marker: the analysis is current while these are unchanged."""
    return {e.patient_id: file_sha256(patient_output(out_dir, e) / DONE_MARKER) for e in entries}


def _analysis_state(out_dir: Path, entries: list[PatientEntry]) -> str:
    """``"current"``, ``"stale"`` (made from other patient results) or ``"missing"``."""
    from .cohort_analysis import ANALYSIS_MARKER

    marker = out_dir / ANALYSIS_MARKER
    if not marker.is_file():
        return "stale" if (out_dir / "report.html").exists() else "missing"
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8")).get("patients")
    except (OSError, ValueError):
        return "stale"
    if not all(is_done(out_dir, e) for e in entries):
        return "stale"
    return "current" if recorded == _fingerprint(out_dir, entries) else "stale"


def _process_all(pending: list[PatientEntry], out_dir: Path, options: dict | None, jobs: int,
                 progress) -> dict[str, str]:
    """Run the pending patients (in worker processes when ``jobs`` > 1); returns the failures by patient.

    A pending patient's folder, if any, is an unfinished or deliberately redone one: it is replaced.
    """
    failed: dict[str, str] = {}
    if jobs == 1 or len(pending) <= 1:
        for done, entry in enumerate(pending, start=1):
            try:
                process_patient(entry, out_dir, options, overwrite=True)
            except (ValueError, OSError) as error:
                failed[entry.patient_id] = _one_line(str(error))
            progress(done, f"patient {entry.patient_id} {'failed' if entry.patient_id in failed else 'done'}")
        return failed
    # spawn: workers start clean (no inherited threads from numba / BLAS / SimpleITK).
    context = multiprocessing.get_context("spawn")
    words = current_option_words()
    queue = list(pending)
    running: dict[int, tuple] = {}
    done = 0
    try:
        while queue or running:
            while queue and len(running) < jobs:
                entry = queue.pop(0)
                receiver, sender = context.Pipe(duplex=False)
                worker = context.Process(target=_worker_main, name=f"luprrt-{entry.patient_id}",
                                         args=(entry, out_dir, options, words, os.getpid(), sender))
                with _worker_start_guard():  # a stop cannot cut a worker's start in two, nor lose the worker
                    worker.start()
                    sender.close()
                    running[worker.sentinel] = (worker, entry, receiver)
            for sentinel in wait_for(list(running)):
                worker, entry, receiver = running.pop(sentinel)
                worker.join()
                outcome = _outcome(receiver)
                receiver.close()
                if outcome is None or outcome[0] != "done":
                    failed[entry.patient_id] = outcome[1] if outcome else _death(worker.exitcode)
                done += 1
                progress(done, f"patient {entry.patient_id} {'failed' if entry.patient_id in failed else 'done'}")
    except BaseException:
        for worker, _, _ in running.values():
            worker.terminate()
        for worker, _, receiver in running.values():
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
            receiver.close()
        raise
    return failed


def _outcome(receiver) -> tuple | None:
    """What a finished worker sent, or None when it died first (the pipe is closed without a message)."""
    try:
        return receiver.recv() if receiver.poll() else None
    except (EOFError, OSError):
        return None


def _worker_main(entry: PatientEntry, out_dir: Path, options: dict | None, words, parent_pid: int,
                 sender) -> None:
    """A worker process: one patient; the outcome goes back through ``sender``; exits if the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    signal.signal(signal.SIGTERM, _exit_cleanly)  # the parent stops us: remove the staging folder on the way
    # SIGTERM came blocked from the parent's start (see _worker_start_guard): a stop sent while we imported
    # is delivered here, to the handler above.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    try:
        with (option_words(words) if words is not None else contextlib.nullcontext()):
            process_patient(entry, out_dir, options, overwrite=True)
        sender.send(("done", ""))
    except (ValueError, OSError) as error:
        sender.send(("error", _one_line(str(error))))
    except Exception as error:  # a bug: reported for this patient, the others go on
        sender.send(("error", _one_line(f"internal error {type(error).__name__}: {error}; please report it")))
    finally:
        sender.close()


def _exit_cleanly(signum, frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _worker_start_guard() -> Iterator[None]:
    """Start a worker as one step that neither Ctrl-C nor SIGTERM can cut in two.

    A stop that lands inside ``Process.start()`` would leave the child half-sent its pickled
    task, so it dies printing an unpickling traceback. SIGTERM is blocked meanwhile (delivered
    to the parent right after), and SIGINT ignored: the child inherits both across exec. Python
    keeps an inherited ignore, so the worker never sees Ctrl-C, not even while it imports; it
    unblocks SIGTERM once its handler is in place. A Ctrl-C in these few milliseconds of the
    parent's own life is lost.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(_PARENT_WATCH_S)
        if os.getppid() != parent_pid:
            os._exit(3)  # the parent is gone: stop now, leaving only a staging folder the next run removes


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"its worker process was killed ({name}); run the command again to redo it"
    return f"its worker process ended without a result (exit status {exitcode}); run the command again"


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM (``kill``, a batch system's stop) raises KeyboardInterrupt like Ctrl-C, so workers are stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _cohort_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``OUT/.luprrt-cohort.lock`` exclusively for the run; refuse when another process holds it."""
    path = out_dir / LOCK_FILE
    handle = open(path, "a+", encoding="utf-8")  # held open (and locked) for the whole run
    try:
        if not _try_lock(handle):
            owner = _lock_owner(out_dir)
            raise ValueError(f"another luprrt cohort run (PID {owner or 'unknown'}) is writing into {out_dir}; "
                             "wait for it to finish or stop it, or choose another output folder")
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%S")}))
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            handle.truncate(0)  # an idle lock file names no owner
        handle.close()  # releases the lock


def _try_lock(handle) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: an exclusive byte-range lock instead
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _lock_owner(out_dir: Path) -> int | None:
    """PID of the run holding ``out_dir``'s lock now, or None when no run holds it."""
    path = out_dir / LOCK_FILE
    if not path.is_file():
        return None
    with open(path, "a+", encoding="utf-8") as handle:
        if _try_lock(handle):
            return None  # nobody holds it (our probe lock is dropped on close)
        handle.seek(0)
        try:
            return int(json.loads(handle.read() or "{}").get("pid"))
        except (ValueError, TypeError):
            return None


def _read_state(out_dir: Path) -> dict:
    path = out_dir / STATE_FILE
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _write_state(out_dir: Path, state: dict) -> None:
    temporary = out_dir / f".{STATE_FILE}.{os.getpid()}"
    temporary.write_text(json.dumps(state, indent=2), encoding="utf-8")
    os.replace(temporary, out_dir / STATE_FILE)


def make_demo_cohort(folder: str | Path, n_patients: int = 8, *, seed: int = 0, ia_tn_factor: float = 1.3,
                     small: bool = True, response_model: str = "dose", overwrite: bool = False,
                     progress: ProgressCallback | None = None) -> list[PatientEntry]:
    """Write a synthetic study with a known IA effect: patients alternate right/left IA side.

    Each patient is :func:`luprrt.phantom.make_patient` with seed ``seed + k`` and the given
    ``response_model`` (default "dose": lesion shrinkage follows the cumulative dose by a known
    relation); the study's ``manifest.csv`` lists them, and ``labs.csv`` and
    ``characteristics.csv`` hold every patient's clinical data. Returns the entries.
    """
    from ..phantom import make_patient, write_patient
    from ..tables import write_rows_csv

    progress = progress or no_progress
    folder = Path(folder)
    listing = folder / "manifest.csv"
    if listing.exists() and not overwrite:
        raise FileExistsError(f"{listing} exists; {fix('overwrite', 'True') or 'choose another folder'} to "
                              "regenerate the demo study")
    entries, labs, characteristics = [], [], []
    for k in range(n_patients):
        progress(k / n_patients, f"synthetic patient {k + 1} of {n_patients}")
        side = SIDES[k % 2]
        patient = make_patient(seed + k, ia_side=side, ia_tn_factor=ia_tn_factor, small=small,
                               response_model=response_model)
        patient_folder = folder / f"patient_{k + 1:02d}"
        write_patient(patient, patient_folder, overwrite=overwrite)
        entries.append(PatientEntry(patient.patient_id, patient_folder, side))
        labs += patient.labs
        characteristics.append(patient.characteristics)
    write_rows_csv(labs, folder / "labs.csv", overwrite=overwrite)
    write_rows_csv(characteristics, folder / "characteristics.csv", overwrite=overwrite)
    with open(listing, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["patient_id", "folder", "ia_side"])
        writer.writerows([e.patient_id, e.folder.relative_to(folder).as_posix(), e.ia_side] for e in entries)
    progress(1.0, f"{n_patients} synthetic patients written")
    return entries
