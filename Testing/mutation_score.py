"""Print the mutation score of the last ``mutmut run`` (``make mutation``), or the mutants of a sample.

Score = killed / (killed + survived), over the mutants mutmut could test; timeouts count as
killed (the mutant broke the code badly enough to hang a test), "no tests" and skipped
mutants are listed apart: they are uncovered code, not equivalent mutants. Survivors are
printed so that each can be judged (equivalent, accepted, or a missing test).

``--sample N`` restricts both the listing and the score to a fixed 1-in-N sample of the
mutants (chosen by a CRC-32 of the mutant's name, so the same mutants in every run): a
mutation score estimated in 1/N of the time, with its 95 % Wilson interval. ``--names``
prints the sample's mutant names (for ``mutmut run NAME ...``) instead of the score.

Run in the folder mutmut ran in (``build/mutation``, see :mod:`Testing.mutation_setup`).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import zlib
from collections import Counter


def in_sample(name: str, every: int) -> bool:
    """True for a fixed 1-in-``every`` subset of mutant names (all when ``every`` is 1)."""
    return every <= 1 or zlib.crc32(name.encode("utf-8")) % every == 0


def wilson_interval(killed: int, tested: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval (fractions) of a proportion killed / tested."""
    p = killed / tested
    centre = (p + z * z / (2 * tested)) / (1 + z * z / tested)
    half = z * math.sqrt(p * (1 - p) / tested + z * z / (4 * tested * tested)) / (1 + z * z / tested)
    return centre - half, centre + half


def mutant_states() -> dict[str, str]:
    """Every mutant's name and state from ``mutmut results --all true``."""
    listing = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], capture_output=True,
                             text=True)
    if listing.returncode != 0:
        raise SystemExit(listing.stderr.strip() or "mutmut results failed")
    status = {}
    for line in listing.stdout.splitlines():
        name, _, state = line.strip().rpartition(": ")
        if name:
            status[name] = state.strip()
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=1, metavar="N", help="a fixed 1-in-N sample of the mutants")
    parser.add_argument("--names", action="store_true", help="print the sample's mutant names and stop")
    args = parser.parse_args(argv)
    status = {name: state for name, state in mutant_states().items() if in_sample(name, args.sample)}
    if args.names:
        print("\n".join(sorted(status)))
        return 0
    counts = Counter(status.values())
    killed = counts["killed"] + counts["timeout"]
    tested = killed + counts["survived"]
    for name, state in sorted(status.items()):
        if state == "survived":
            print(f"survived  {name}")
    print(", ".join(f"{state} {n}" for state, n in sorted(counts.items())))
    by_module: dict[str, Counter] = {}
    for name, state in status.items():
        by_module.setdefault(name.split(".x", 1)[0], Counter())[state] += 1
    for module, module_counts in sorted(by_module.items()):
        module_killed = module_counts["killed"] + module_counts["timeout"]
        module_tested = module_killed + module_counts["survived"]
        if module_tested:
            print(f"  {module}: {100.0 * module_killed / module_tested:.1f} % ({module_killed} of {module_tested})")
    if tested:
        low, high = wilson_interval(killed, tested)
        sample = f", a 1-in-{args.sample} sample" if args.sample > 1 else ""
        print(f"mutation score: {100.0 * killed / tested:.1f} % ({killed} of {tested} tested mutants killed{sample}; "
              f"95 % interval {100 * low:.1f}-{100 * high:.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
