"""The README's command-line tutorial runs as written: phantom -> measure -> recist, in a fresh folder."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from luprrt.cli import main
from luprrt.tables import read_rows_csv

README = Path(__file__).resolve().parents[2] / "README.md"


def tutorial_commands() -> list[list[str]]:
    """The ``luprrt`` lines of the README's first code block that starts with ``luprrt phantom``."""
    blocks = re.findall(r"```\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    block = next(b for b in blocks if b.strip().startswith("luprrt phantom"))
    return [shlex.split(line)[1:] for line in block.splitlines() if line.strip().startswith("luprrt ")]


def test_the_tutorial_commands_work_in_sequence(tmp_path, monkeypatch):
    commands = tutorial_commands()
    assert [c[0] for c in commands] == ["phantom", "measure", "recist"]
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        assert main(argv) == 0, argv
    best = read_rows_csv(tmp_path / "recist" / "recist_best_response.csv")
    assert len(best) == 1 and best[0]["response"] in ("CR", "PR", "SD", "PD", "NE")
    measured = read_rows_csv(tmp_path / "measurements.csv")
    assert {row["lesion_type"] for row in measured} >= {"target"}
    assert (tmp_path / "recist" / "waterfall.png").is_file()
