"""pytest glue for the headless Slicer host and the modules' own self-tests.

* Fixture ``host``: the headless Slicer host (started once per session, on first use),
  with an empty scene before and after each test. Only tests that ask for it (or for
  ``slicer_host_session``) import slicer; core tests never pay its start-up.
* Module self-tests: for every ``<Module>/<Module>.py`` in the repository root, each
  ``test_*`` method of its ``<Module>Test`` class becomes a pytest item
  (``LobeQuant/LobeQuant.py::LobeQuantTest::test_...``) that runs ``setUp`` and the
  method on real MRML, as Slicer's "Reload and Test" does. Methods are listed from the
  source, so collecting them imports nothing; a missing module file yields no items.
  They are collected whenever this folder is (``pytest`` / ``pytest Testing``); select
  them with ``-k <Module>Test``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTING_DIR = Path(__file__).resolve().parent
if str(TESTING_DIR) not in sys.path:
    sys.path.insert(0, str(TESTING_DIR))

from slicer_host.modules import module_files, self_check_names  # noqa: E402 - needs the path above

# The GUI tests replace ``qt``/``ctk`` for their whole process: they run in a child pytest started by
# Testing/slicer/test_gui_suite.py (which sets LUPRRT_GUI_PROCESS=1), never in this one.
collect_ignore = [] if os.environ.get("LUPRRT_GUI_PROCESS") == "1" else ["slicer_gui"]


@pytest.fixture(scope="session")
def slicer_host_session():
    """The headless Slicer host of this test session (started on first use)."""
    from slicer_host import start_host

    return start_host()


@pytest.fixture
def host(slicer_host_session):
    """The headless Slicer host with an empty scene (cleared again after the test)."""
    slicer_host_session.clear_scene()
    yield slicer_host_session
    slicer_host_session.clear_scene()


def pytest_collect_file(file_path: Path, parent):
    """Anchor the modules' self-tests on this conftest file, so they are collected with this folder."""
    if file_path.resolve() == Path(__file__).resolve():
        return ModuleSelfTestsRoot.from_parent(parent, name="ModuleSelfTests")
    return None


class ModuleSelfTestsRoot(pytest.Collector):
    """Every module file of the repository that has self-tests."""

    def collect(self):
        for path in module_files():
            if self_check_names(path):
                yield ModuleSelfTests.from_parent(self, path=path)


class ModuleSelfTests(pytest.File):
    """``<Module>.py``: holds one collector, its ``<Module>Test`` class."""

    def collect(self):
        yield ModuleTestClass.from_parent(self, name=f"{self.path.stem}Test")


class ModuleTestClass(pytest.Collector):
    """``<Module>Test``: one item per ``test_*`` method, in file order."""

    def collect(self):
        for name, line in self_check_names(self.path):
            yield ModuleTestMethod.from_parent(self, name=name, line=line)


class ModuleTestMethod(pytest.Item):
    """One self-test method: ``setUp``, the method, ``tearDown`` on a fresh host scene."""

    def __init__(self, *, line: int, **kwargs):
        super().__init__(**kwargs)
        self.line = line

    def runtest(self) -> None:
        from slicer_host import load_scripted_module, start_host

        host = start_host()
        loaded = load_scripted_module(self.path)
        test_class = loaded.member("Test")
        if test_class is None:
            raise AssertionError(f"{self.path} lists {self.parent.name} in its source but the imported "
                                 "module does not define it")
        host.clear_scene()
        case = test_class(self.name)
        case.setUp()
        try:
            getattr(case, self.name)()
        finally:
            case.tearDown()
            case.doCleanups()
            host.clear_scene()

    def reportinfo(self):
        return self.path, self.line - 1, f"{self.parent.name}.{self.name}"
