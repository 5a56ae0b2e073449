"""Stand-ins for ``slicer.app`` and ``slicer.modules`` around real MRML logics.

``slicer.util``'s load/save helpers reach the IO machinery through
``slicer.app.coreIOManager()``, and module code reaches other modules' logics through
``slicer.modules.<name>.logic()``. These small classes answer those calls with the
real C++ logics from slicer-core; everything GUI-related is absent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import SimpleNamespace

logger = logging.getLogger(__name__)


class CoreModule:
    """A loaded C++ module as seen from Python: name, title and its logic."""

    def __init__(self, name: str, logic):
        self.name = name
        self.title = name
        self.path = ""
        self._logic = logic

    def logic(self):
        return self._logic

    def widgetRepresentation(self):
        """No panels headless."""
        return None

    def __repr__(self) -> str:
        return f"<CoreModule {self.name} logic={self._logic.GetClassName()}>"


class Settings:
    """In-memory ``QSettings``: value/setValue/contains/remove/allKeys (nothing persisted)."""

    def __init__(self):
        self._values: dict[str, object] = {}

    def value(self, key: str, default=None):
        return self._values.get(key, default)

    def setValue(self, key: str, value) -> None:
        self._values[key] = value

    def contains(self, key: str) -> bool:
        return key in self._values

    def remove(self, key: str) -> None:
        prefix = f"{key}/"
        for name in [k for k in self._values if k == key or k.startswith(prefix)]:
            del self._values[name]

    def allKeys(self) -> list[str]:
        return sorted(self._values)

    def sync(self) -> None:
        """Nothing to write: the settings live in memory."""


class ModuleManager:
    """``slicer.app.moduleManager()``: finds modules registered in ``slicer.modules``."""

    def __init__(self, modules: SimpleNamespace):
        self._modules = modules

    def module(self, name: str):
        found = getattr(self._modules, name.lower(), None)
        return found if found is not None and hasattr(found, "name") else None

    def factoryManager(self):
        return self

    def loadedModuleNames(self) -> list[str]:
        return sorted(m.name for m in vars(self._modules).values() if hasattr(m, "name"))


class Application:
    """The part of ``slicer.app`` that headless code and ``slicer.util`` use.

    ``connect("startupCompleted()", callback)`` records the callback; the host calls
    :meth:`emit_startup_completed` once its modules are loaded, as Slicer does after
    start-up (modules register their sample data that way).
    """

    majorVersion = 5
    minorVersion = 13

    def __init__(self, scene, app_logic, io_manager, modules: SimpleNamespace, temporary_path: str):
        self._scene = scene
        self._app_logic = app_logic
        self._io_manager = io_manager
        self._module_manager = ModuleManager(modules)
        self._settings = Settings()
        self._startup_callbacks: list[Callable[[], None]] = []
        self._startup_done = False
        self.temporaryPath = temporary_path
        self.cachePath = temporary_path
        self.slicerHome = ""
        self._command_options = SimpleNamespace(noMainWindow=True, testingEnabled=True)

    def commandOptions(self) -> SimpleNamespace:
        """Headless: no main window, testing enabled."""
        return self._command_options

    def mrmlScene(self):
        return self._scene

    def applicationLogic(self):
        return self._app_logic

    def coreIOManager(self):
        return self._io_manager

    ioManager = coreIOManager

    def moduleManager(self):
        return self._module_manager

    def settings(self) -> Settings:
        return self._settings

    userSettings = revisionUserSettings = settings

    def testingEnabled(self) -> bool:
        """Always true: no message boxes are shown (slicer.util checks this)."""
        return True

    def processEvents(self, *args) -> None:
        """No event loop headless."""

    def setOverrideCursor(self, *args) -> None:
        """No cursor headless."""

    def restoreOverrideCursor(self) -> None:
        """No cursor headless."""

    def connect(self, signal: str, callback: Callable[[], None]) -> bool:
        """Record a ``startupCompleted()`` callback; other signals never fire headless."""
        if signal == "startupCompleted()":
            if self._startup_done:
                callback()
            else:
                self._startup_callbacks.append(callback)
        else:
            logger.debug("signal %s is never emitted headless", signal)
        return True

    def emit_startup_completed(self) -> None:
        """Run the recorded ``startupCompleted()`` callbacks (once)."""
        callbacks, self._startup_callbacks = self._startup_callbacks, []
        self._startup_done = True
        for callback in callbacks:
            callback()
