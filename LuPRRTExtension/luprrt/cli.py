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


SUBCOMMANDS: list[Callable] = [_add_recist]


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
