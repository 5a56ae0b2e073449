"""pytest plugin (``-p slicer_host.gui_pytest_plugin``) running a test folder on the GUI host.

Used to run Slicer's own tests of its scripted-module layer (``Base/Python/slicer/tests`` of a
Slicer source tree) against the PythonQt-compatible layer: the GUI host is started before the
test files import ``qt``, and Slicer's C++ module names that those files import are given their
slicer-core counterparts (``MRMLCorePython`` is ``slicer_core.MRMLCore``).
"""

from __future__ import annotations

import importlib
import sys

from .gui_host import SLOT_ERRORS, start_gui_host


def pytest_configure(config):
    host = start_gui_host()
    sys.modules.setdefault("MRMLCorePython", importlib.import_module("slicer_core.MRMLCore"))
    config._luprrt_gui_layer = host.scripted_layer


def pytest_report_header(config):
    return f"LuPRRT GUI host: real Qt (PySide6, offscreen); scripted-module layer: {config._luprrt_gui_layer}"


def pytest_runtest_setup(item):
    SLOT_ERRORS.clear()


def pytest_runtest_teardown(item):
    if SLOT_ERRORS:
        errors, SLOT_ERRORS[:] = list(SLOT_ERRORS), []
        raise AssertionError(f"exception raised inside a Qt slot: {errors[0]!r}")


def pytest_terminal_summary(terminalreporter, config):
    terminalreporter.write_line(pytest_report_header(config))
