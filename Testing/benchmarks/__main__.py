"""Run every benchmark (``make bench``), or the ones named: ``python -m Testing.benchmarks regionstats``."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    available = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    wanted = argv or available
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; available: {available}")
    for name in wanted:
        logging.info("== benchmark %s ==", name)
        importlib.import_module(f"Testing.benchmarks.bench_{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
