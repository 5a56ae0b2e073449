"""Import stubs for ``qt`` and ``ctk`` so that ``<Module>.py`` files import headless.

Slicer's scripted modules import ``qt`` and ``ctk`` (PythonQt wrappers) at file
scope but only use them inside Widget methods, which cannot run without a GUI.
A stub module answers every attribute with a harmless class: instances accept
any constructor arguments, every method call returns another harmless object
(falsy, empty when iterated), and class attributes (enum values such as
``qt.Qt.AlignLeft``) are harmless classes that combine with ``|``.

The stubs are installed only when the real modules cannot be imported; in
Slicer they are never used.
"""

from __future__ import annotations

import importlib.util
import sys
import types


class _StubMeta(type):
    """Metaclass: unknown class attributes become stub classes (nested enums, flags)."""

    def __getattr__(cls, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        nested = _stub_class(f"{cls.__name__}.{name}")
        setattr(cls, name, nested)
        return nested

    def __or__(cls, other):
        return cls

    __ror__ = __and__ = __rand__ = __or__


class QtStub(metaclass=_StubMeta):
    """Stands for any Qt/CTK class headless: constructs from anything, does nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _stub_method

    def __call__(self, *args, **kwargs):
        return QtStub()

    def __bool__(self) -> bool:
        return False

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0

    def __or__(self, other):
        return self

    __ror__ = __and__ = __rand__ = __or__


def _stub_method(*args, **kwargs) -> QtStub:
    return QtStub()


def _stub_class(name: str) -> type:
    return _StubMeta(name.rsplit(".", 1)[-1], (QtStub,), {"__qualname__": name, "__module__": "qt"})


class StubModule(types.ModuleType):
    """A module whose every public attribute is a stub class (created on first access)."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        cls = _stub_class(name)
        setattr(self, name, cls)
        return cls


def gui_class_fallback(name: str) -> type:
    """``slicer.<name>`` for Qt widget classes (qMRML*, qSlicer*, ctk*) that slicer-core lacks."""
    if name.startswith(("qMRML", "qSlicer", "ctk")):
        return _stub_class(name)
    raise AttributeError(f"module 'slicer' has no attribute {name!r}")


def install_qt_stubs() -> list[str]:
    """Put stub ``qt`` and ``ctk`` modules into ``sys.modules`` if the real ones are missing.

    Returns the names of the modules that were stubbed.
    """
    stubbed = []
    for name in ("qt", "ctk"):
        if name in sys.modules:
            continue
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = StubModule(name, f"Headless stub for {name} (LuPRRT test host).")
            stubbed.append(name)
    return stubbed
