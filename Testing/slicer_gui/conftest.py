"""GUI tests: the module panels on real Qt (PySide6, offscreen) with Slicer's own scripted layer.

The GUI host replaces ``qt`` and ``ctk`` for the whole process, so this folder runs in a pytest
process of its own: the main run ignores it (``Testing/conftest.py``) and
``Testing/slicer/test_gui_suite.py`` launches it with ``LUPRRT_GUI_PROCESS=1``.

* An exception raised inside a Qt slot never reaches the caller of ``click()``; the host collects
  it (``sys.excepthook``) and :func:`pytest_runtest_call` fails the test with it, unless the test
  took it with the ``slot_errors`` fixture.
* ``open_panel(name)`` builds a module's panel as Slicer does (module class, panel parent,
  ``Widget(parent)``, ``setup()``, ``enter()``) and tears it down as Slicer does on unloading.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTING_DIR = Path(__file__).resolve().parents[1]
if str(TESTING_DIR) not in sys.path:
    sys.path.insert(0, str(TESTING_DIR))

from slicer_host import dialogs  # noqa: E402 - needs the path above
from slicer_host.gui_host import SLOT_ERRORS, start_gui_host  # noqa: E402
from slicer_host.panels import Panel, PatientLoader  # noqa: E402

GUI_HOST = start_gui_host()  # before any test module imports qt
SLICER_LAYER = not GUI_HOST.scripted_layer.startswith("LuPRRT")
NO_SLICER_LAYER = ("Slicer's pure-Python layer (ScriptedLoadableModule, parameterNodeWrapper) not found: "
                   "set LUPRRT_SLICER_SOURCE to a Slicer source tree or place one at ../shared/upstream/slicer")


def _layer_line() -> str:
    return f"LuPRRT GUI host: real Qt (PySide6, offscreen); scripted-module layer: {GUI_HOST.scripted_layer}"


def pytest_report_header(config):
    return _layer_line()


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(_layer_line())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    SLOT_ERRORS.clear()
    try:
        result = yield
    except BaseException as failure:
        if SLOT_ERRORS:  # the slot's exception is the cause: name it rather than its consequence
            errors, SLOT_ERRORS[:] = list(SLOT_ERRORS), []
            raise AssertionError(f"exception raised inside a Qt slot (a user sees a traceback): {errors[0]!r}; "
                                 f"then the test failed: {failure!r}") from failure
        raise
    if SLOT_ERRORS:
        errors, SLOT_ERRORS[:] = list(SLOT_ERRORS), []
        raise AssertionError(f"exception raised inside a Qt slot (a user sees a traceback): {errors[0]!r}")
    return result


@pytest.fixture(scope="session")
def gui():
    """The GUI host of this process."""
    return GUI_HOST


@pytest.fixture
def slot_errors():
    """Take the exceptions raised inside Qt slots so far (the test then owns them)."""

    def take() -> list[BaseException]:
        taken = list(SLOT_ERRORS)
        SLOT_ERRORS.clear()
        return taken

    return take


@pytest.fixture
def shown():
    """Message boxes and progress values shown during the test (cleared before it)."""
    dialogs.SHOWN.clear()
    dialogs.FILE_ANSWERS.clear()
    yield dialogs.SHOWN
    dialogs.FILE_ANSWERS.clear()


@pytest.fixture
def scene(gui):
    """The MRML scene, empty before and after the test."""
    gui.host.clear_scene()
    yield gui.host.scene
    gui.host.clear_scene()


@pytest.fixture
def slicer_layer():
    """Skip, naming why, where Slicer's pure-Python layer is absent (the panels need it)."""
    if not SLICER_LAYER:
        pytest.skip(NO_SLICER_LAYER)


@pytest.fixture
def open_panel(slicer_layer, scene, shown):
    """``open_panel(name)``: the module's panel on an empty scene, unloaded after the test."""
    panels = []

    def open_(name: str) -> Panel:
        panel = Panel(name)
        panels.append(panel)
        return panel

    yield open_
    for panel in panels:
        if panel.widget is not None:
            panel.close()


@pytest.fixture(scope="session")
def patient_folder(tmp_path_factory):
    """A small synthetic patient written as a site's data would be: one cycle (4, 24, 96, 168 h) and a
    12-week follow-up."""
    from luprrt.phantom import make_patient, write_patient

    folder = tmp_path_factory.mktemp("patient")
    write_patient(make_patient(0, small=True, n_cycles=1, followup_weeks=(12.0,)), folder)
    return folder


@pytest.fixture
def patient(patient_folder):
    """Loads the session's synthetic patient into the (test's) scene."""
    return PatientLoader(patient_folder)
