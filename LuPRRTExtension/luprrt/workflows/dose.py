"""Patient dosimetry over treatment cycles, headless: the ``luprrt dose`` command and cohort batch.

:func:`run_patient_dosimetry` takes a patient folder (:mod:`.dose_inputs`) or the same data
in memory and, per cycle (:mod:`.dose_cycle`): brings every scan onto the first scan's SPECT
grid (a scan with its own CT is registered to the cycle's CT), measures every region's
activity with one pass over each SPECT (optionally partial-volume corrected,
:mod:`.dose_regions`), integrates the time-activity curves, and computes the dose by several
methods side by side. Across cycles it adds the cumulative dose per lesion and organ and
checks the organ limits (:func:`luprrt.dosimetry.assess_organ_limits`): cumulative kidney
dose and kidney BED, and red-marrow dose when a marrow segment exists, each with its value
projected after a further cycle (7.4 GBq by default).

Red marrow: with blood samples for every cycle (``blood_samples``, or ``blood_samples`` CSVs
named by the manifest's cycle visits) the blood-based dose of the EANM guideline (Hindorf et
al. 2010; :mod:`.dose_marrow`) is the marrow dose of the limits, per cycle and cumulative,
with the imaging-based dose of the marrow segment (voxel S-value dose, or local deposition
without voxel dose) in the row beside it, labelled. Without blood samples the imaging-based
dose is used when a marrow segment exists; with neither the marrow limit is reported as not
assessed, with that reason.

Outputs (``out_dir``; nothing is overwritten unless ``overwrite``): ``dose.csv``
(:data:`.dose_cycle.DOSE_COLUMNS`), ``tac.csv`` (measured and fitted time-activity
curves), ``limits.csv`` (:data:`LIMIT_COLUMNS`, after every cycle), ``registration.csv``,
``marrow.csv`` (with blood samples: :data:`.dose_marrow.MARROW_COLUMNS`),
per cycle ``tia_cycle<k>.nrrd`` (Bq h/mL) and ``dose_cycle<k>.nrrd`` (Gy: voxel S-value
dose, or local deposition with ``voxel_dose=False``), and ``provenance.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..dosimetry import MARROW_DOSE_LIMIT_GY, CycleDose, assess_organ_limits
from ..dosimetry.marrow import red_marrow_to_blood_ratio
from ..io import write_volume
from ..outputs import StagedOutputs
from ..provenance import ProgressCallback, inputs_sha256, no_progress, provenance_record
from ..tables import write_rows_csv
from .dose_cycle import REGISTRATIONS, CycleDosimetry, DosimetryOptions, cycle_dosimetry
from .dose_inputs import PatientData, read_patient_folder, validate_cycle
from .dose_marrow import MARROW_METHOD, CycleMarrow, cycle_marrow_dose, marrow_rows, resolve_blood_samples
from .manifest import read_manifest

log = logging.getLogger(__name__)

LIMIT_COLUMNS = ("patient_id", "after_cycle", "cycles_included", "quantity", "method", "this_cycle_gy",
                 "value_gy", "projected_gy", "next_activity_gbq", "limit_gy", "exceeded",
                 "projected_exceeded", "flag")
TABLE_FILES = ("dose.csv", "tac.csv", "limits.csv", "registration.csv")
MARROW_NOT_ASSESSED = ("not assessed: no marrow segment and no blood samples for every cycle; the blood-based "
                       "marrow dose needs blood samples (blood_samples CSV)")
# The imaging-based marrow dose beside the blood-based one: its own quantity, so that nothing keyed on
# marrow_dose_gy (limits, stop rules) counts it twice.
IMAGING_MARROW_QUANTITY = "marrow_dose_imaging_gy"
IMAGING_MARROW_NOTE = ("imaging-based marrow segment dose, shown beside the blood-based (EANM 2010) value; the "
                       "limit uses the blood-based one")


@dataclass
class DosimetryRun:
    """Result of :func:`run_patient_dosimetry` (also written to ``out_dir`` when given)."""

    patient_id: str
    dose_rows: list[dict]
    tac_rows: list[dict]
    limits_rows: list[dict]
    registration_rows: list[dict]
    cycles: list[CycleDosimetry]
    provenance: dict
    files: list[Path] = field(default_factory=list)
    marrow_rows: list[dict] = field(default_factory=list)
    marrows: list[CycleMarrow] = field(default_factory=list)

    def dose(self, cycle: int, region: str, method: str, fit_model: str | None = None) -> dict:
        """The dose row of one cycle, region and method (and TIA model when a cycle has several)."""
        for row in self.dose_rows:
            if (row["cycle"], row["region"], row["method"]) == (cycle, region, method) and (
                    fit_model is None or row["fit_model"] == fit_model):
                return row
        raise KeyError(f"no dose row for cycle {cycle}, region {region!r}, method {method!r}"
                       + (f", fit model {fit_model!r}" if fit_model else ""))


def run_patient_dosimetry(patient: str | Path | PatientData, out_dir: str | Path | None = None, *,
                          cycles: Iterable[int] | None = None,
                          time_points_h: Mapping[int, Sequence[float]] | None = None,
                          options: DosimetryOptions | None = None, registration: str = "rigid",
                          voxel_dose: bool = True, overwrite: bool = False, blood_samples=None,
                          progress: ProgressCallback | None = None) -> DosimetryRun:
    """Dosimetry of every cycle of one patient, cumulative doses and organ limits.

    Parameters
    ----------
    patient : path or PatientData
        A patient folder (``manifest.json``, see :mod:`.dose_inputs`) or the data in memory.
    out_dir : path, optional
        Where the tables, maps and provenance go (none written when None).
    cycles : iterable of int, optional
        Cycles to process (folder input only; default all).
    time_points_h : mapping, optional
        Scans to use per cycle (folder input only), e.g. ``{2: [96.0]}``: single-time-point cycle 2.
    options : DosimetryOptions, optional
        Method choices (TAC model, partial-volume correction, S-value phantom, limits, ...).
    registration : ``"rigid"``, ``"none"`` or ``"deformable"``
        For scans that have their own CT (scans sharing the cycle's CT need none).
    voxel_dose : bool
        Compute the voxel S-value (FFT convolution) dose.
    overwrite : bool
        Replace existing output files.
    blood_samples : path or mapping, optional
        Blood samples for the blood-based red-marrow dose (:func:`.dose_marrow.resolve_blood_samples`:
        a CSV with a ``cycle`` column, or cycle -> CSV); default those the manifest names per cycle.
    progress : callable, optional
        ``progress(fraction, message)``.

    Raises
    ------
    ValueError, FileNotFoundError, FileExistsError
        Bad input (the message names it) or outputs that exist already.
    """
    progress = progress or no_progress
    options = options or DosimetryOptions()
    cycles = None if cycles is None else [int(c) for c in cycles]
    if registration not in REGISTRATIONS:
        raise ValueError(f"unknown registration {registration!r}; expected one of {REGISTRATIONS}")
    if isinstance(patient, PatientData):
        if cycles is not None or time_points_h is not None:
            raise ValueError("cycles and time_points_h select from a patient folder; pass the chosen cycles "
                             "and scans in the PatientData instead")
        for cycle in patient.cycles:
            validate_cycle(cycle)
        source = None
    else:
        source = Path(patient)
    outputs = None
    cycle_numbers = _cycle_numbers(patient, cycles)
    given_blood = resolve_blood_samples(blood_samples, cycle_numbers)
    rmblr = red_marrow_to_blood_ratio(options.hematocrit)
    if out_dir is not None:
        inputs = [source] if source is not None else []
        inputs += [Path(blood_samples)] if isinstance(blood_samples, str | Path) else []
        outputs = StagedOutputs(out_dir, _output_names(cycle_numbers), overwrite=overwrite, inputs=inputs)
    if source is not None:
        progress(0.0, f"reading {source.name}")
        patient = read_patient_folder(source, cycles, time_points_h, options.site_calibration)
    if not patient.cycles:
        raise ValueError(f"patient {patient.patient_id} has no cycle to process")
    if [c.cycle for c in patient.cycles] != sorted({c.cycle for c in patient.cycles}):
        raise ValueError(f"cycles must be in treatment order, each once; got "
                         f"{[c.cycle for c in patient.cycles]}")

    reference_fits: dict = {}
    kernels: dict = {}
    results = []
    marrows: list[CycleMarrow] = []
    reference_body_fit = None
    share = 0.85 / len(patient.cycles)
    for k, cycle in enumerate(patient.cycles):
        start = 0.1 + k * share
        result = cycle_dosimetry(patient.patient_id, cycle, options=options, registration=registration,
                                 voxel_dose=voxel_dose, reference_fits=reference_fits, kernels=kernels,
                                 progress=lambda f, m, start=start: progress(start + share * f, m))
        for name, fit in result.fits.items():
            reference_fits.setdefault(name, fit)
        results.append(result)
        samples = given_blood.get(cycle.cycle, cycle.blood_samples)
        if samples is not None:
            marrow = cycle_marrow_dose(cycle.cycle, cycle.activity_mbq, samples, result.times_h,
                                       result.body_activity_mbq, result.dose_rows, result.primary,
                                       phantom=options.s_value_phantom, rmblr=rmblr,
                                       reference_body_fit=reference_body_fit)
            reference_body_fit = reference_body_fit or marrow.whole_body_fit
            marrows.append(marrow)
    dose_rows = _with_cumulative_dose(results)
    limits_rows = organ_limit_rows(patient.patient_id, results, options, marrows)
    imaging = {r.cycle: (r.safety.marrow_dose_gy, r.safety.marrow_method) for r in results}
    marrow_table = marrow_rows(patient.patient_id, marrows, imaging, options.s_value_phantom)
    parameters = {"registration": registration, "voxel_dose": voxel_dose,
                  "cycles": [c.cycle for c in patient.cycles],
                  "blood_samples": {str(m.cycle): m.source for m in marrows},
                  "scan_hours": {str(c.cycle): [p.hours_post_injection for p in c.time_points]
                                 for c in patient.cycles},
                  "options": _plain(dataclasses.asdict(dataclasses.replace(options, site_calibration=None)))
                  | {"site_calibration": site.label if (site := options.site_calibration) else None}}
    inputs = list(patient.input_files)
    if options.site_calibration is not None and Path(options.site_calibration.source).is_file():
        inputs.append(Path(options.site_calibration.source))
    record = provenance_record(inputs_sha256(inputs), parameters)
    run = DosimetryRun(patient.patient_id, dose_rows, [row for r in results for row in r.tac_rows],
                       limits_rows, [row for r in results for row in r.registration_rows], results, record,
                       marrow_rows=marrow_table, marrows=marrows)
    if outputs is not None:
        progress(0.96, "writing tables and maps")
        run.files = _write_outputs(run, outputs)
    log.info("dosimetry of %s: %d cycles, %d dose rows", patient.patient_id, len(results), len(dose_rows))
    progress(1.0, "done")
    return run


def _cycle_numbers(patient, cycles) -> list[int]:
    if isinstance(patient, PatientData):
        return [c.cycle for c in patient.cycles]
    if cycles is not None:
        return list(cycles)
    visits = read_manifest(patient).get("sessions", [])
    return sorted(v["cycle"] for v in visits if isinstance(v, dict) and v.get("kind") == "cycle"
                  and isinstance(v.get("cycle"), int))


def _output_names(cycles: list[int]) -> list[str]:
    """Every output file, checked before the computation so that a refusal costs nothing."""
    return [*TABLE_FILES, "marrow.csv", *(f"{kind}_cycle{c}.nrrd" for c in cycles for kind in ("tia", "dose")),
            "provenance.json"]


def _with_cumulative_dose(results: list[CycleDosimetry]) -> list[dict]:
    """Rows with ``cumulative_dose_gy``: the primary doses of earlier cycles plus this row's dose."""
    earlier: dict[tuple[str, str], float] = {}
    rows = []
    for result in results:
        this_cycle = {}
        for row, primary in zip(result.dose_rows, result.primary, strict=True):
            key = (row["region"], row["method"])
            rows.append(row | {"cumulative_dose_gy": earlier.get(key, 0.0) + row["dose_gy"]})
            if primary:
                this_cycle[key] = row["dose_gy"]
        for key, dose in this_cycle.items():
            earlier[key] = earlier.get(key, 0.0) + dose
    return rows


def organ_limit_rows(patient_id: str, results: list[CycleDosimetry], options: DosimetryOptions,
                     marrows: list[CycleMarrow] | None = None) -> list[dict]:
    """Organ-limit rows (:data:`LIMIT_COLUMNS`) after every cycle, on the cycles processed so far.

    Per cycle: kidney dose (mass-weighted mean of the kidneys by ``options.limits_method``),
    kidney BED, and marrow dose: blood-based (``marrows``) when every cycle so far has one, with
    the imaging-based marrow-segment dose in a labelled row beside it (quantity
    :data:`IMAGING_MARROW_QUANTITY`); else the imaging-based dose
    when every cycle has a marrow segment; else a "not assessed" row with the reason. Each with
    the cumulative value, the value projected after a further ``options.next_activity_gbq`` cycle,
    the limit and a flag message when it is (or would be) exceeded.
    """
    blood = {m.cycle: m.dose.dose_gy for m in marrows or []}
    rows = []
    doses = []
    imaging_doses = []
    for index, result in enumerate(results):
        safety = result.safety
        blood_known = all(r.cycle in blood for r in results[:index + 1])
        marrow_known = blood_known or all(r.safety.marrow_dose_gy is not None for r in results[:index + 1])
        doses.append(CycleDose(safety.activity_gbq, safety.kidney_dose_gy, safety.kidney_effective_half_life_h,
                               blood[result.cycle] if blood_known else safety.marrow_dose_gy))
        imaging_doses.append(dataclasses.replace(doses[-1], marrow_dose_gy=safety.marrow_dose_gy))
        assessment = assess_organ_limits(doses, risk_factors=options.risk_factors,
                                         next_activity_gbq=options.next_activity_gbq)
        base = {"patient_id": patient_id, "after_cycle": result.cycle,
                "cycles_included": ",".join(str(r.cycle) for r in results[:index + 1]),
                "next_activity_gbq": assessment.next_activity_gbq}
        this_cycle = {"kidney_dose_gy": safety.kidney_dose_gy,
                      "kidney_bed_gy": float(assessment.kidney_bed_per_cycle_gy[-1]),
                      "marrow_dose_gy": doses[-1].marrow_dose_gy}
        methods = {"kidney_dose_gy": options.limits_method, "kidney_bed_gy": options.limits_method,
                   "marrow_dose_gy": MARROW_METHOD if blood_known else safety.marrow_method}
        for check in assessment.checks:
            flag = next((f for f in assessment.flags if f.startswith(check.quantity)), "")
            rows.append(base | {"quantity": check.quantity, "method": methods[check.quantity],
                                "this_cycle_gy": this_cycle[check.quantity], "value_gy": check.value_gy,
                                "projected_gy": check.projected_gy, "limit_gy": check.limit_gy,
                                "exceeded": check.exceeded, "projected_exceeded": check.projected_exceeded,
                                "flag": flag})
        if blood_known and all(d.marrow_dose_gy is not None for d in imaging_doses):
            check = assess_organ_limits(imaging_doses, risk_factors=options.risk_factors,
                                        next_activity_gbq=options.next_activity_gbq).check("marrow_dose_gy")
            rows.append(base | {"quantity": IMAGING_MARROW_QUANTITY, "method": f"imaging_{safety.marrow_method}",
                                "this_cycle_gy": safety.marrow_dose_gy, "value_gy": check.value_gy,
                                "projected_gy": check.projected_gy, "limit_gy": check.limit_gy,
                                "exceeded": check.exceeded, "projected_exceeded": check.projected_exceeded,
                                "flag": IMAGING_MARROW_NOTE})
        if not marrow_known:
            rows.append(base | {"quantity": "marrow_dose_gy", "this_cycle_gy": safety.marrow_dose_gy,
                                "limit_gy": MARROW_DOSE_LIMIT_GY, "flag": MARROW_NOT_ASSESSED})
    return [{column: row.get(column) for column in LIMIT_COLUMNS} for row in rows]


def _write_outputs(run: DosimetryRun, outputs: StagedOutputs) -> list[Path]:
    tables = (("dose.csv", run.dose_rows), ("tac.csv", run.tac_rows), ("limits.csv", run.limits_rows),
              ("registration.csv", run.registration_rows), ("marrow.csv", run.marrow_rows))
    with outputs:
        for name, rows in tables:
            if rows or name != "marrow.csv":
                write_rows_csv(rows, outputs.path(name))
        for result in run.cycles:
            write_volume(result.tia_bq_h_per_ml, outputs.path(f"tia_cycle{result.cycle}.nrrd"), "Bq h/mL")
            write_volume(result.dose_gy, outputs.path(f"dose_cycle{result.cycle}.nrrd"), "Gy")
        outputs.path("provenance.json").write_text(json.dumps(run.provenance, indent=1, allow_nan=False),
                                                   encoding="utf-8")
        return outputs.commit()


def _plain(value):
    """JSON-safe copy of the options (dataclasses, tuples, NaN -> None)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
