"""Print the mutation score of the last ``mutmut run`` (``make mutation``).

Score = killed / (killed + survived), over the mutants mutmut could test; timeouts count as
killed (the mutant broke the code badly enough to hang a test), "no tests" and skipped
mutants are listed apart: they are uncovered code, not equivalent mutants. Survivors are
printed so that each can be judged (equivalent, accepted, or a missing test).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter


def main() -> int:
    listing = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], capture_output=True,
                             text=True)
    if listing.returncode != 0:
        print(listing.stderr.strip() or "mutmut results failed", file=sys.stderr)
        return 1
    status = {}
    for line in listing.stdout.splitlines():
        name, _, state = line.strip().rpartition(": ")
        if name:
            status[name] = state.strip()
    counts = Counter(status.values())
    killed = counts["killed"] + counts["timeout"]
    tested = killed + counts["survived"]
    for name, state in sorted(status.items()):
        if state == "survived":
            print(f"survived  {name}")
    print(", ".join(f"{state} {n}" for state, n in sorted(counts.items())))
    if tested:
        print(f"mutation score: {100.0 * killed / tested:.1f} % ({killed} of {tested} tested mutants killed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
