"""Prepare the folder ``make mutation`` runs mutmut in (build/mutation).

mutmut names a mutant after its file's path relative to the folder it runs in and only strips
a leading ``src.``; the package lives in ``LuPRRTExtension/luprrt``, so mutants would be named
``LuPRRTExtension.luprrt...`` while the tests import ``luprrt...`` and mutmut would find no
test for any mutant. The run folder therefore links ``src`` to ``LuPRRTExtension`` and
``Testing`` to the tests, and its pyproject.toml carries [tool.mutmut] of the repository's
pyproject.toml with the paths rewritten under ``src/``.

Usage: ``python -m Testing.mutation_setup [PATH ...] [--tests TEST ...]``; each PATH is relative
to ``LuPRRTExtension/luprrt`` (``liver/tn.py``, ``dosimetry/``) and replaces the configured list
(``make mutation MUTATE="liver/tn.py regionstats.py"``); each TEST (a folder or file under
Testing/) replaces the configured tests (``MUTATE_TESTS="Testing/core/liver"``), which makes the
first, tracing run of the tests shorter.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tomllib

REPOSITORY = Path(__file__).resolve().parent.parent
RUN_FOLDER = REPOSITORY / "build" / "mutation"
PACKAGE_FOLDER = "LuPRRTExtension"


def _toml_value(value) -> str:
    """``value`` (str, bool, number or list of those) written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + ", ".join(_toml_value(item) for item in value) + "]"


def run_folder_config(configured: dict, subset: list[str], tests_subset: list[str]) -> dict:
    """[tool.mutmut] for the run folder: paths under ``src/``; the subsets replace the lists if given."""
    config = dict(configured)
    paths = config.pop("paths_to_mutate", None) or config.pop("source_paths", [])
    if subset:
        paths = [f"{PACKAGE_FOLDER}/luprrt/{path}" for path in subset]
    unknown = [path for path in paths if not (REPOSITORY / path).exists()]
    if unknown:
        raise SystemExit(f"mutation: no such file or folder {unknown[0]}; give paths under "
                         f"{PACKAGE_FOLDER}/luprrt, e.g. MUTATE=\"liver/tn.py regionstats.py\"")
    config["source_paths"] = ["src/" + path.removeprefix(PACKAGE_FOLDER + "/") for path in paths]
    tests = tests_subset or config.pop("tests_dir", [])
    config.pop("tests_dir", None)
    missing = [test for test in tests if not (REPOSITORY / test).exists()]
    if missing:
        raise SystemExit(f"mutation: no such test {missing[0]}; give tests under Testing/, "
                         "e.g. MUTATE_TESTS=\"Testing/core/liver\"")
    config["pytest_add_cli_args_test_selection"] = config.get("pytest_add_cli_args_test_selection", []) + tests
    config["also_copy"] = ["src/", "Testing/"]
    return config


def _split(argv: list[str]) -> tuple[list[str], None, list[str]]:
    """Paths to mutate before ``--tests``, tests after it."""
    if "--tests" not in argv:
        return argv, None, []
    at = argv.index("--tests")
    return argv[:at], None, argv[at + 1:]


def main(argv: list[str]) -> int:
    configured = tomllib.loads((REPOSITORY / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"]
    paths, _, tests = _split(argv)
    config = run_folder_config(configured, paths, tests)
    RUN_FOLDER.mkdir(parents=True, exist_ok=True)
    for name, target in (("src", REPOSITORY / PACKAGE_FOLDER), ("Testing", REPOSITORY / "Testing")):
        link = RUN_FOLDER / name
        if link.is_symlink() and link.resolve() != target:
            link.unlink()
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
    lines = ["[tool.mutmut]"] + [f"{key} = {_toml_value(value)}" for key, value in config.items()]
    text = "\n".join(lines) + "\n"
    pyproject = RUN_FOLDER / "pyproject.toml"
    if not pyproject.exists() or pyproject.read_text("utf-8") != text:
        pyproject.write_text(text, "utf-8")
    print("mutation: mutating " + " ".join(config["source_paths"]) + f" in {RUN_FOLDER}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
