"""``luprrt``: the LuPRRT analyses from the command line, one sub-command per module.

Every sub-command shows a progress bar, writes tables whose columns carry units, refuses to
overwrite existing outputs unless ``--overwrite`` is given, and turns bad input into a
one-line error (exit status 2) that names the problem.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from . import __version__


@contextmanager
def progress_bar(description: str):
    """A tqdm bar exposed as a :data:`luprrt.provenance.ProgressCallback` (fraction, message)."""
    from tqdm import tqdm

    with tqdm(total=1000, desc=description, unit="‰", leave=True, file=sys.stderr,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}") as bar:

        def update(fraction: float, message: str) -> None:
            bar.update(max(0, round(1000 * fraction) - bar.n))
            bar.set_postfix_str(message[:60], refresh=True)

        yield update


def _recist(args) -> None:
    from .response.outcome import OutcomeThresholds
    from .response.recist import RecistCriteria
    from .workflows.recist import run_recist

    criteria = RecistCriteria(too_small_to_measure_mm=args.too_small_mm,
                              confirmation_interval_days=args.confirmation_days,
                              require_confirmation=not args.no_confirmation,
                              min_sd_duration_days=args.min_sd_days)
    thresholds = OutcomeThresholds(args.response_pct, args.progression_pct)
    with progress_bar("RECIST 1.1") as progress:
        run = run_recist(args.measurements, args.out, criteria=criteria, thresholds=thresholds,
                         figures=not args.no_figures, overwrite=args.overwrite, progress=progress)
    for path in run.files:
        print(path)


def _add_recist(commands, common) -> None:
    parser = commands.add_parser(
        "recist", parents=[common], help="RECIST 1.1 per time point and lesion outcome from a measurements CSV",
        description="Columns: patient_id, lesion_id, organ, is_lymph_node, date (YYYY-MM-DD), "
                    "longest_diameter_mm, short_axis_mm, lesion_type (target/non_target/new), "
                    "non_target_status. Writes recist_time_points.csv, recist_best_response.csv, "
                    "lesion_outcomes.csv, spider.png and waterfall.png.")
    parser.add_argument("measurements", type=Path, help="measurements CSV")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--too-small-mm", type=float, default=5.0, help="diameter of a too-small-to-measure lesion (mm)")
    parser.add_argument("--confirmation-days", type=int, default=28, help="minimum interval confirming CR/PR (days)")
    parser.add_argument("--no-confirmation", action="store_true", help="best response without confirmation")
    parser.add_argument("--min-sd-days", type=int, default=42, help="minimum SD duration from baseline (days)")
    parser.add_argument("--response-pct", type=float, default=-30.0, help="lesion response threshold (%% change)")
    parser.add_argument("--progression-pct", type=float, default=20.0, help="lesion progression threshold (%% change)")
    parser.add_argument("--no-figures", action="store_true", help="skip spider and waterfall PNGs")
    parser.set_defaults(run=_recist)


def _cycle_list(text: str) -> list[int]:
    try:
        cycles = [int(part) for part in text.split(",")]
    except ValueError:
        cycles = []
    if not cycles or min(cycles) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated cycle numbers such as 1,2; got {text!r}")
    return cycles


def _dose(args) -> None:
    from .workflows.dose import run_patient_dosimetry
    from .workflows.dose_cycle import DosimetryOptions

    options = DosimetryOptions(tac_model=args.tac_model, pvc_fwhm_mm=args.pvc_fwhm_mm,
                               risk_factors=args.risk_factors, next_activity_gbq=args.next_activity_gbq)
    with progress_bar("dosimetry") as progress:
        run = run_patient_dosimetry(args.patient, args.out, cycles=args.cycles, options=options,
                                    registration=args.registration, voxel_dose=not args.no_voxel_dose,
                                    overwrite=args.overwrite, progress=progress)
    for row in run.limits_rows:
        if row["flag"] and row["after_cycle"] == run.cycles[-1].cycle:
            print(f"luprrt dose: {run.patient_id}: {row['flag']}", file=sys.stderr)
    for path in run.files:
        print(path)


def _add_dose(commands, common) -> None:
    from .workflows.dose_tac import TAC_MODELS

    parser = commands.add_parser(
        "dose", parents=[common],
        help="per-cycle and cumulative lesion and organ dosimetry of a patient folder",
        description="Reads a patient folder (manifest.json: cycles with CT, tagged .seg.nrrd and "
                    "quantitative SPECT in Bq/mL at one or more times). Writes dose.csv (dose per cycle, "
                    "region and method), tac.csv, limits.csv (kidney dose and BED, marrow dose, projected "
                    "after a further cycle), registration.csv, tia_cycle<k>.nrrd (Bq h/mL), "
                    "dose_cycle<k>.nrrd (Gy) and provenance.json.")
    parser.add_argument("patient", type=Path, help="patient folder holding manifest.json")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--registration", choices=("none", "rigid", "deformable"), default="rigid",
                        help="how a scan with its own CT is aligned to the cycle's CT (default rigid)")
    parser.add_argument("--no-voxel-dose", action="store_true",
                        help="skip the voxel S-value (FFT convolution) dose map")
    parser.add_argument("--cycles", type=_cycle_list, default=None,
                        help="cycles to process, e.g. 1,2 (default all)")
    parser.add_argument("--pvc-fwhm-mm", type=float, default=None,
                        help="SPECT resolution FWHM (mm) for partial-volume correction of region activities")
    parser.add_argument("--tac-model", choices=TAC_MODELS, default="auto",
                        help="time-activity model (default auto)")
    parser.add_argument("--risk-factors", action="store_true",
                        help="kidney risk factors present: BED limit 28 Gy instead of 40 Gy")
    parser.add_argument("--next-activity-gbq", type=float, default=7.4,
                        help="activity of the projected next cycle (GBq, default 7.4)")
    parser.set_defaults(run=_dose)


SUBCOMMANDS: list[Callable] = [_add_recist, _add_dose]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="luprrt", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"luprrt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--overwrite", action="store_true", help="replace existing output files")
    for add in SUBCOMMANDS:
        add(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as error:
        print(f"luprrt {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
