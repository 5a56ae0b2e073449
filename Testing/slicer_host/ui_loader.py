"""``qt.QUiLoader`` that builds .ui files from the PythonQt-compatible classes.

Every widget of the file is made from ``qt``/``ctk``/``slicer`` (so ``type(w) == qt.QCheckBox`` and
attribute-style properties hold on loaded widgets), after two rewrites of the XML that Qt's own
loader cannot do for classes declared in Python:

* ``<connections>`` whose signatures carry MRML pointers (``mrmlSceneChanged(vtkMRMLScene*)`` ->
  ``setMRMLScene(vtkMRMLScene*)``, ``currentNodeChanged(vtkMRMLNode*)`` -> ``setMRMLTableNode(...)``)
  are taken out and made here with the PythonQt-style ``connect``, which raises when the signal
  does not exist; any other connection is left to Qt.
* ``<set>ctkPathLineEdit::Files|...</set>`` values become the number of those CTK flags.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from PySide6 import QtCore, QtUiTools, QtWidgets

from .ctk_widgets import FILTER_FLAGS
from .pythonqt import PythonQtObject, register


def widget_class(class_name: str):
    """The PythonQt-compatible class named ``class_name`` in ``qt``, ``ctk`` or ``slicer``, or None."""
    import ctk
    import qt
    import slicer

    for namespace in (ctk, slicer) if class_name.startswith(("ctk", "qMRML", "qSlicer")) else (qt,):
        found = getattr(namespace, class_name, None)
        if isinstance(found, type) and issubclass(found, PythonQtObject):
            return found
    return None


def _rewrite(document: bytes) -> tuple[bytes, list[tuple[str, str, str, str]]]:
    """The .ui XML with MRML-pointer connections removed (returned apart) and CTK flag sets as numbers."""
    root = ET.fromstring(document)
    for value in root.iter("set"):
        names = [part.split("::")[-1] for part in (value.text or "").split("|") if part]
        if names and all(name in FILTER_FLAGS for name in names):
            value.tag = "number"
            value.text = str(sum(FILTER_FLAGS[name] for name in names))
    taken = []
    connections = root.find("connections")
    if connections is not None:
        for connection in list(connections):
            signal, slot = connection.findtext("signal", ""), connection.findtext("slot", "")
            if "vtk" in signal or "vtk" in slot:
                taken.append((connection.findtext("sender"), signal, connection.findtext("receiver"), slot))
                connections.remove(connection)
    return ET.tostring(root, encoding="utf-8"), taken


@register
class QUiLoader(PythonQtObject, QtUiTools.QUiLoader):
    """Loads a .ui file into PythonQt-compatible widgets (see the module docstring)."""

    def createWidget(self, className: str, parent=None, name: str = ""):
        cls = widget_class(className)
        if cls is None:
            return super().createWidget(className, parent, name)
        widget = cls(parent)
        widget.setObjectName(name)
        return widget

    def load(self, device, parent=None):
        if isinstance(device, str):
            device = QtCore.QFile(device)
        if not device.isOpen():
            device.open(QtCore.QIODevice.OpenModeFlag.ReadOnly)
        document, connections = _rewrite(bytes(device.readAll()))
        buffer = QtCore.QBuffer()
        buffer.setData(document)
        buffer.open(QtCore.QIODevice.OpenModeFlag.ReadOnly)
        root = super().load(buffer, parent)
        if root is None:
            raise RuntimeError(f"Qt could not load the .ui file: {self.errorString()}")
        for sender_name, signal, receiver_name, slot in connections:
            sender, receiver = _named(root, sender_name), _named(root, receiver_name)
            slot_name = slot.partition("(")[0]
            if not hasattr(receiver, slot_name):
                raise ValueError(f".ui connection to {receiver_name}.{slot}: {receiver.className()} has no such slot")
            sender.connect(signal, getattr(receiver, slot_name))
        return root


def _named(root, name: str):
    if QtCore.QObject.objectName(root) == name:
        return root
    found = root.findChild(QtWidgets.QWidget, name)
    if found is None:
        raise ValueError(f".ui connection names {name!r}, which is not a widget of the file")
    return found
