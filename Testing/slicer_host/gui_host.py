"""The headless host with a GUI: real Qt (PySide6, offscreen) with PythonQt semantics, and Slicer's
own pure-Python layer (ScriptedLoadableModule, parameterNodeWrapper, i18n) from a Slicer source tree.

:func:`start_gui_host` must run before anything imports ``qt``, ``ctk`` or the module files, in a
process of its own (it replaces ``qt``/``ctk`` for the whole process). It

1. starts a ``QApplication`` (``QT_QPA_PLATFORM=offscreen`` unless set) with ``QSettings`` in a
   temporary folder;
2. puts the PythonQt-compatible ``qt`` and ``ctk`` modules into ``sys.modules`` and the qMRML /
   qSlicer widget classes onto ``slicer``;
3. appends ``<Slicer source>/Base/Python/slicer`` to the ``slicer`` package path, so that
   ``slicer.ScriptedLoadableModule``, ``slicer.parameterNodeWrapper`` and ``slicer.i18n`` are
   Slicer's own files (found by :func:`slicer_source`); without a source tree the project's
   stand-ins are used and :attr:`GuiHost.scripted_layer` says so;
4. starts the MRML host and gives ``slicer.app`` the GUI parts Slicer's layer calls
   (``topLevelWidgets``, ``translate``, ``moduleDocumentationUrl``, ``moduleManager()`` with its
   ``moduleAboutToBeUnloaded(QString)`` signal, override cursors, ``processEvents``) and a main window;
5. routes exceptions raised inside Qt slots (which never reach the caller of ``click()``) to
   :data:`SLOT_ERRORS` through ``sys.excepthook``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from . import (
    ctk_widgets,
    dialogs,
    mrml_widgets,
    ui_loader,  # noqa: F401 - registers qt.QUiLoader
)
from .bootstrap import Host, current_host, start_host
from .pythonqt import LazyQtModule, qt_class

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_VARIABLE = "LUPRRT_SLICER_SOURCE"
SLOT_ERRORS: list[BaseException] = []
_LAYER_FILES = ("ScriptedLoadableModule.py", "parameterNodeWrapper/__init__.py", "i18n.py")


def slicer_source() -> Path | None:
    """The Slicer source tree holding the pure-Python layer: ``$LUPRRT_SLICER_SOURCE``, else
    ``shared/upstream/slicer`` beside the project or beside one of its parent folders (a checkout
    made one level deeper, as CI makes it, finds it too); None when none has the files."""
    candidates = [os.environ.get(SOURCE_VARIABLE),
                  *(folder / "shared" / "upstream" / "slicer" for folder in REPO_ROOT.parents)]
    for candidate in candidates:
        if candidate and all((Path(candidate) / "Base/Python/slicer" / f).is_file() for f in _LAYER_FILES):
            return Path(candidate).resolve()
    return None


@dataclass
class GuiHost:
    """The running GUI host: the MRML host, the Qt application, the main window and which layer ran."""

    host: Host
    qt_application: object
    main_window: object
    scripted_layer: str


class ModuleManager(qt_class("QObject")):
    """``slicer.app.moduleManager()``: finds modules and announces their unloading."""

    moduleAboutToBeUnloaded = QtCore.Signal(str)

    def __init__(self, headless_manager):
        super().__init__()
        self._headless = headless_manager

    def module(self, name: str):
        return self._headless.module(name)

    def factoryManager(self):
        return self._headless

    def unloadModule(self, name: str) -> None:
        """Emit ``moduleAboutToBeUnloaded(name)`` as Slicer does before unloading (or reloading) a module."""
        self.moduleAboutToBeUnloaded.emit(name)


class GuiApplication:
    """``slicer.app`` with a GUI: the headless application plus what Slicer's Python layer calls on Qt."""

    applicationName = "Slicer"
    documentationBaseUrl = "https://slicer.readthedocs.io/en/latest/"

    def __init__(self, headless, qt_application):
        self._headless = headless
        self._qt = qt_application
        self._module_manager = ModuleManager(headless.moduleManager())

    def __getattr__(self, name: str):
        return getattr(self._headless, name)

    def moduleManager(self):
        return self._module_manager

    def topLevelWidgets(self) -> list:
        return self._qt.topLevelWidgets()

    def translate(self, context: str, text: str) -> str:
        return self._qt.translate(context, text)

    def moduleDocumentationUrl(self, moduleName: str) -> str:
        return f"{self.documentationBaseUrl}user_guide/modules/{moduleName.lower()}.html"

    def testingEnabled(self) -> bool:
        """False: message boxes are shown (and recorded by :mod:`dialogs`), as a user would see them."""
        return False

    def processEvents(self, *args) -> None:
        self._qt.processEvents()

    def setOverrideCursor(self, cursor) -> None:
        self._qt.setOverrideCursor(cursor)

    def restoreOverrideCursor(self) -> None:
        self._qt.restoreOverrideCursor()

    def layoutManager(self):
        """No view layout: the host has no slice or 3D views."""
        return None


def _qt_module():
    # dialogs and ui_loader registered their qt.QMessageBox, qt.QProgressDialog, qt.QFileDialog and
    # qt.QUiLoader on import.
    return LazyQtModule("qt")


def _ctk_module():
    module = types.ModuleType("ctk", "PythonQt-compatible CTK widgets over PySide6 (LuPRRT test host).")
    for cls in ctk_widgets.WIDGET_CLASSES:
        setattr(module, cls.__name__, cls)
    module.ctkMessageBox = dialogs.ctkMessageBox
    module.ctkWidgetsUtils = types.SimpleNamespace(grabWidget=lambda widget, rect=None: widget.grab().toImage())
    return module


def _make_singletons_immortal() -> None:
    """Give ``True``, ``False`` and ``None`` the immortality they have from Python 3.12 on (Slicer's Python).

    PySide6 6.12 returns ``True`` from ``emit`` and ``disconnect`` of a signal declared in Python, and
    ``None`` from some calls, without a reference of its own, so each call takes one reference away; on
    Python 3.11 the interpreter aborts when they run out ("bool_dealloc: deallocating True or False",
    "none_dealloc"). Python >= 3.12 keeps these objects at a fixed, huge reference count and never frees
    them; here their count is raised by 2**30 (the first field of every object is its count).
    """
    if sys.version_info < (3, 12):
        for singleton in (True, False, None):
            ctypes.c_ssize_t.from_address(id(singleton)).value += 1 << 30


def _excepthook(kind, value, traceback) -> None:
    SLOT_ERRORS.append(value)
    sys.__excepthook__(kind, value, traceback)


def start_gui_host() -> GuiHost:
    """Start the GUI host (once per process; see the module docstring) and return it."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import slicer

    existing = getattr(slicer, "_luprrt_gui_host", None)
    if existing is not None:
        return existing
    if current_host() is not None or (isinstance(sys.modules.get("qt"), types.ModuleType) \
            and not isinstance(sys.modules.get("qt"), LazyQtModule)):
        raise RuntimeError("start_gui_host() must run before the headless host or any qt import "
                           "(run the GUI tests in their own process)")
    settings_folder = tempfile.mkdtemp(prefix="luprrt-qsettings-")
    QtCore.QSettings.setDefaultFormat(QtCore.QSettings.Format.IniFormat)
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, settings_folder)
    QtCore.QCoreApplication.setOrganizationName("LuPRRT-tests")
    QtCore.QCoreApplication.setApplicationName("Slicer")
    qt_application = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["luprrt-gui-tests"])

    sys.modules["qt"] = _qt_module()
    sys.modules["ctk"] = _ctk_module()
    for cls in mrml_widgets.WIDGET_CLASSES:
        setattr(slicer, cls.__name__, cls)
    source = slicer_source()
    if source is not None:
        slicer.__path__.append(str(source / "Base/Python/slicer"))
    host = start_host()
    layer = (f"Slicer's own (from {source})" if source is not None and "slicer.ScriptedLoadableModule"
             not in host.stand_ins else "LuPRRT's stand-ins (no Slicer source tree found)")
    slicer.app = GuiApplication(host.app, qt_application)
    main_window = qt_class("QMainWindow")()
    main_window.setObjectName("qSlicerMainWindow")
    sys.excepthook = _excepthook
    _make_singletons_immortal()
    gui_host = GuiHost(host, qt_application, main_window, layer)
    slicer._luprrt_gui_host = gui_host
    return gui_host
