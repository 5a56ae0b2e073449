"""PythonQt semantics over PySide6: the ``qt`` module that Slicer's Python code is written against.

Inside Slicer, ``qt`` is PythonQt. Code written for it relies on behaviour that plain PySide6
does not have, and each difference makes a GUI test pass while the panel is broken:

* Qt properties are attributes and win over same-name methods: ``button.enabled = False``
  disables the button (in PySide6 it sets a Python attribute and leaves the button enabled),
  ``widget.toolTip`` reads the property (PySide6 returns the bound method).
* Signals are connected by signature string: ``button.connect("clicked(bool)", slot)``.
  PySide6 accepts a string naming a signal that does not exist and returns a valid-looking
  connection, so :meth:`PythonQtObject.connect` looks the signal up first and raises if absent.
* ``obj.name`` is the object name and ``obj.className()`` the Qt class name.

Each ``qt.<Class>`` is a subclass ``<Class>(PythonQtObject, PySide6 class)`` named like the Qt
class (so ``metaObject().className()`` and ``type(w) == qt.QCheckBox`` in Slicer's GUI connectors
hold), made on first use: PySide6 creates its own classes lazily, so the module is never
listed, only asked for a name.
"""

from __future__ import annotations

import types

from PySide6 import QtCore, QtGui, QtUiTools, QtWidgets

_PYSIDE_MODULES = (QtWidgets, QtGui, QtCore, QtUiTools)

# C++ argument types of PythonQt signatures that a signal declared in Python carries as PyObject.
_OBJECT_ARGUMENT_PREFIXES = ("vtk", "qMRML", "qSlicer", "ctk")


_PROPERTY_NAMES: dict[type, frozenset[str]] = {}


def _property_names(obj: QtCore.QObject) -> frozenset[str]:
    """Names of the Qt properties of ``obj``'s class (its meta-object, bases and Python-declared ones)."""
    cls = type(obj)
    names = _PROPERTY_NAMES.get(cls)
    if names is None:
        meta = QtCore.QObject.metaObject(obj)
        names = frozenset(str(meta.property(i).name()) for i in range(meta.propertyCount()))
        _PROPERTY_NAMES[cls] = names
    return names


def _argument_matches(declared: str, requested: str) -> bool:
    """Whether a signal argument declared as ``declared`` carries the ``requested`` C++ type."""
    if declared == requested:
        return True
    pointer_to_object = requested.endswith("*") and requested.startswith(_OBJECT_ARGUMENT_PREFIXES)
    return declared == "PyObject" and pointer_to_object


def find_signal(obj: QtCore.QObject, signature: str) -> bytes:
    """The meta-object signature of ``obj``'s signal matching the PythonQt ``signature``.

    Raises ValueError naming the object and the signals it has when there is no such signal.
    """
    normalized = bytes(QtCore.QMetaObject.normalizedSignature(signature)).decode()
    name, _, arguments = normalized.partition("(")
    wanted = [a for a in arguments.rstrip(")").split(",") if a]
    meta = obj.metaObject()
    signals = []
    for index in range(meta.methodCount()):
        method = meta.method(index)
        if method.methodType() != QtCore.QMetaMethod.MethodType.Signal:
            continue
        signals.append(bytes(method.methodSignature()).decode())
        declared = [bytes(t).decode() for t in method.parameterTypes()]
        if bytes(method.name()).decode() == name and len(declared) == len(wanted) and all(
                _argument_matches(d, w) for d, w in zip(declared, wanted, strict=True)):
            return bytes(method.methodSignature())
    raise ValueError(f"{meta.className()} {QtCore.QObject.objectName(obj)!r} has no signal {signature!r}; "
                     f"its signals are {', '.join(sorted(set(signals)))}")


def _pyside_type(kind: type) -> type:
    """The PySide6 class behind a ``qt`` class (itself for any other class)."""
    if isinstance(kind, type) and issubclass(kind, PythonQtObject):
        return next(base for base in kind.__mro__ if base.__module__.startswith("PySide6."))
    return kind


_READING: set[tuple[int, str]] = set()
_PYTHONQT_METHODS = frozenset({"connect", "disconnect"})


class PythonQtObject:
    """Mixin giving a PySide6 QObject class PythonQt's attribute and connection semantics."""

    def __getattribute__(self, name: str):
        if name in _PYTHONQT_METHODS:
            # Shiboken answers ``connect``/``disconnect`` with QObject's own before the class's.
            return getattr(type(self), name).__get__(self)
        if name[0] != "_" and name in _property_names(self):
            key = (id(self), name)
            if key not in _READING:
                # Reading a property may call a virtual C++ method of the same name (sizeHint), for
                # which PySide6 looks up a Python override by this same attribute name: that inner
                # lookup gets the method, not the property, or it would recurse without end.
                _READING.add(key)
                try:
                    value = QtCore.QObject.property(self, name)
                finally:
                    _READING.discard(key)
                return tuple(value) if isinstance(value, list) else value  # PythonQt: QStringList -> tuple
        return super().__getattribute__(name)

    def __setattr__(self, name: str, value) -> None:
        if name == "name":
            self.setObjectName(value)
        elif name[0] != "_" and name in _property_names(self):
            if isinstance(value, tuple):  # PythonQt converts a tuple to a list (QStringList, ...)
                value = list(value)
            if not QtCore.QObject.setProperty(self, name, value):
                raise TypeError(f"{self.className()}.{name} cannot be set to {value!r}")
        else:
            super().__setattr__(name, value)

    @property
    def name(self) -> str:
        """PythonQt's alias of ``objectName``."""
        return QtCore.QObject.objectName(self)

    def findChildren(self, kind=QtCore.QObject, *arguments, **options):
        return super().findChildren(_pyside_type(kind), *arguments, **options)

    def findChild(self, kind=QtCore.QObject, *arguments, **options):
        return super().findChild(_pyside_type(kind), *arguments, **options)

    def className(self) -> str:
        return self.metaObject().className()

    def connect(self, signature: str, slot) -> bool:
        """Connect the signal named by its PythonQt ``signature`` to a Python callable."""
        QtCore.QObject.connect(self, QtCore.SIGNAL(find_signal(self, signature).decode()), slot)
        return True

    def disconnect(self, signature: str, slot=None) -> bool:
        """Disconnect ``slot`` (or every slot) from the signal named by ``signature``."""
        signal = QtCore.SIGNAL(find_signal(self, signature).decode())
        if slot is None:
            return QtCore.QObject.disconnect(self, signal)
        return QtCore.QObject.disconnect(self, signal, slot)


_CLASSES: dict[str, type] = {}


def register(cls: type) -> type:
    """Make ``cls`` the ``qt.<its name>`` class (for replacements such as a recording QMessageBox)."""
    _CLASSES[cls.__name__] = cls
    return cls


def pyside_class(name: str):
    """The PySide6 object named ``name`` in QtWidgets, QtGui, QtCore or QtUiTools, or None."""
    for module in _PYSIDE_MODULES:
        found = getattr(module, name, None)
        if found is not None:
            return found
    return None


def qt_class(name: str) -> type:
    """``qt.<name>``: the PySide6 class with PythonQt semantics, made on first use.

    The class derives from the PySide6 class only (Shiboken makes the C++ object of a class's first
    wrapped base, so ``qt.QCheckBox`` cannot also derive from ``qt.QWidget``); ``findChildren`` and
    ``findChild`` translate a ``qt`` class argument to its PySide6 class, so ``findChildren(qt.QWidget)``
    finds every child widget as in PythonQt.
    """
    cls = _CLASSES.get(name)
    if cls is not None:
        return cls
    found = pyside_class(name)
    if not (isinstance(found, type) and issubclass(found, QtCore.QObject)):
        raise TypeError(f"qt.{name} is not a QObject class of PySide6")
    body = {"__module__": "qt", "__doc__": f"{name} with PythonQt semantics."}
    return register(type(name, (PythonQtObject, found), body))


class LazyQtModule(types.ModuleType):
    """``qt``: QObject classes wrapped with PythonQt semantics on first access, the rest as in PySide6."""

    def __init__(self, name: str):
        super().__init__(name, "PythonQt-compatible Qt over PySide6 (LuPRRT test host).")

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        found = pyside_class(name)
        if found is None and name not in _CLASSES:
            raise AttributeError(f"module 'qt' has no attribute {name!r}")
        value = qt_class(name) if name in _CLASSES or issubclass_qobject(found) else found
        setattr(self, name, value)
        return value


def issubclass_qobject(found) -> bool:
    return isinstance(found, type) and issubclass(found, QtCore.QObject)
