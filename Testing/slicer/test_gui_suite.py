"""Run the GUI tests (Testing/slicer_gui) and Slicer's own parameterNodeWrapper tests in child pytest processes.

The GUI host replaces ``qt``/``ctk`` for its whole process, so these suites cannot share this
process. Each child's summary line is parsed and asserted: every test passed, none failed or
errored, and as many ran as were collected (a skip only with the named reason). Each test prints
which scripted-module layer ran (Slicer's own, or LuPRRT's stand-ins).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "Testing"))

from slicer_host.gui_host import slicer_source  # noqa: E402 - needs the path above; imports no Qt module

NO_PYSIDE = "PySide6 is not installed (the test extra installs PySide6-Essentials)"
NO_SOURCE = ("Slicer's pure-Python layer not found: set LUPRRT_SLICER_SOURCE to a Slicer source tree "
             "or place one at ../shared/upstream/slicer")


def _run_child(arguments: list[str], timeout_s: float = 600.0) -> tuple[dict[str, int], str]:
    """Run ``python -m pytest <arguments>`` as the GUI process; the outcome counts and the output."""
    environment = dict(os.environ, LUPRRT_GUI_PROCESS="1", QT_QPA_PLATFORM="offscreen")
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "LuPRRTExtension"), str(REPO_ROOT), str(REPO_ROOT / "Testing"),
         environment.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments]
    completed = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True,
                               timeout=timeout_s)
    output = completed.stdout + completed.stderr
    summary = next((line for line in reversed(output.splitlines()) if re.search(r" in [0-9.]+s", line)), "")
    counts = {kind: int(number) for number, kind in re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected)",
                                                               summary)}
    counts["returncode"] = completed.returncode
    return counts, output


@pytest.mark.skipif(importlib.util.find_spec("PySide6") is None, reason=NO_PYSIDE)
def test_gui_suite_passes_on_real_qt():
    """The panels' GUI tests: all pass in their own process; the header names the layer that ran."""
    counts, output = _run_child(["Testing/slicer_gui"])
    layer = next((line for line in output.splitlines() if line.startswith("LuPRRT GUI host")), "")
    print(layer)
    assert counts["returncode"] == 0 and not counts.get("failed") and not counts.get("error") \
        and not counts.get("errors"), f"GUI tests failed:\n{output[-6000:]}"
    if slicer_source() is None:
        assert "stand-ins" in layer and counts.get("skipped", 0) > 0, output[-3000:]
    else:
        assert "Slicer's own" in layer, layer
        assert counts.get("passed", 0) >= 30 and not counts.get("skipped"), output[-3000:]


# Slicer's tests of its scripted-module layer (Base/Python/slicer/tests) that cannot pass on this
# layer, each with the reason; every other test of those files must pass.
UPSTREAM_DESELECTED = {
    "test_guiCreations_parameter_node_wrapper": "the labels QFormLayout.addRow makes in C++ are plain PySide6 "
                                                "objects (PythonQt semantics only for objects made from Python)",
    "test_guiCreations_parameter_packs": "as above: labels made by QFormLayout in C++",
    "test_CtkRangeWidgetToRange": "ctkRangeWidget is a named placeholder (no LuPRRT panel uses a range)",
    "test_CtkRangeWidgetToNegativeRange": "ctkRangeWidget is a named placeholder",
    "test_CtkDoubleRangeSliderToRange": "ctkDoubleRangeSlider is a named placeholder",
    "test_qMRMLRangeSliderToRange": "qMRMLRangeWidget is a named placeholder",
    "test_ctkColorPickerButtonToQColor": "ctkColorPickerButton is a named placeholder (no panel binds a colour)",
    "test_ctkDoubleSliderToFloat": "ctkDoubleSlider is a named placeholder (an integer QSlider)",
    "test_qMRMLSliderWidgetToFloat": "qMRMLSliderWidget is a named placeholder (no panel uses it)",
    "test_qMRMLSubjectHierarchyComboBox": "qMRMLSubjectHierarchyComboBox is a named placeholder",
    "test_qMRMLSubjectHierarchyTreeViewToNode": "qMRMLSubjectHierarchyTreeView is a named placeholder",
    "test_ctkDirectoryButtonToPath": "CTK turns a relative directory into an absolute one; the stand-in keeps "
                                     "the text (LuPRRT's panels give absolute folders)",
}


@pytest.mark.skipif(importlib.util.find_spec("PySide6") is None, reason=NO_PYSIDE)
@pytest.mark.skipif(slicer_source() is None, reason=NO_SOURCE)
def test_slicer_own_parameter_node_wrapper_tests_pass_on_the_layer():
    """Slicer's own tests of parameterNodeWrapper, parameter packs, VTKObservationMixin and
    childWidgetVariables, run on the PythonQt-compatible layer: all pass but the listed ones."""
    tests = slicer_source() / "Base/Python/slicer/tests"
    files = sorted(str(path) for path in tests.glob("test_slicer_*.py"))
    deselect = " or ".join(UPSTREAM_DESELECTED)
    counts, output = _run_child([*files, "-p", "slicer_host.gui_pytest_plugin", "-k", f"not ({deselect})"])
    print({kind: number for kind, number in counts.items() if kind != "returncode"})
    assert counts["returncode"] == 0 and not counts.get("failed"), output[-6000:]
    assert counts.get("passed", 0) >= 90, output[-3000:]
    # Every deselected name exists (a renamed upstream test must not hide here).
    source = "\n".join(Path(f).read_text(encoding="utf-8") for f in files)
    assert all(f"def {name}(" in source for name in UPSTREAM_DESELECTED)
