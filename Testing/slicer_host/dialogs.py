"""Dialogs that a test can see: message boxes and file dialogs answer at once, progress is recorded.

Offscreen there is nobody to close a modal dialog, so ``exec`` and the static helpers of
:class:`QMessageBox` record the message in :data:`SHOWN` and return ``Ok``; file dialogs take their
answer from :data:`FILE_ANSWERS` (a dialog nobody prepared an answer for raises, failing the test);
:class:`QProgressDialog` keeps every value it was given, so a test can check 0 -> 100 %.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from PySide6 import QtWidgets

from .pythonqt import PythonQtObject, register


@dataclass
class ShownMessage:
    """A message box as the user would have seen it."""

    kind: str
    title: str
    text: str
    detailed_text: str = ""


@dataclass
class DialogRecord:
    """Everything shown since the last :meth:`clear`."""

    messages: list[ShownMessage] = field(default_factory=list)
    progress: list[list[int]] = field(default_factory=list)

    def clear(self) -> None:
        self.messages.clear()
        self.progress.clear()


SHOWN = DialogRecord()
FILE_ANSWERS: deque[str] = deque()

_KINDS = {QtWidgets.QMessageBox.Icon.Critical: "critical", QtWidgets.QMessageBox.Icon.Warning: "warning",
          QtWidgets.QMessageBox.Icon.Question: "question"}


@register
class QMessageBox(PythonQtObject, QtWidgets.QMessageBox):
    """A message box that records itself instead of waiting for a click."""

    def exec(self) -> QtWidgets.QMessageBox.StandardButton:
        SHOWN.messages.append(ShownMessage(_KINDS.get(self.icon, "information"), self.windowTitle, self.text,
                                           self.detailedText))
        return QtWidgets.QMessageBox.StandardButton.Ok

    exec_ = exec

    @staticmethod
    def _record(kind: str, parent, title: str, text: str, *args) -> QtWidgets.QMessageBox.StandardButton:
        SHOWN.messages.append(ShownMessage(kind, title, text))
        return QtWidgets.QMessageBox.StandardButton.Ok

    @staticmethod
    def critical(parent, title, text, *args):
        return QMessageBox._record("critical", parent, title, text)

    @staticmethod
    def warning(parent, title, text, *args):
        return QMessageBox._record("warning", parent, title, text)

    @staticmethod
    def information(parent, title, text, *args):
        return QMessageBox._record("information", parent, title, text)

    @staticmethod
    def question(parent, title, text, *args):
        return QMessageBox._record("question", parent, title, text)


@register
class ctkMessageBox(QMessageBox):
    """CTK's message box (with "don't show again"): records itself like :class:`QMessageBox`."""


@register
class QProgressDialog(PythonQtObject, QtWidgets.QProgressDialog):
    """A progress dialog that keeps the values it was set to (one list per dialog in :data:`SHOWN`).

    Values are recorded when set as PythonQt code sets them (``dialog.value = 40``). ``setValue`` is
    not overridden: a Python override of a property's accessor makes PySide6 read the property through
    Python attribute lookup, which recurses.
    """

    def __init__(self, *args):
        super().__init__(*args)
        self._values: list[int] = []
        SHOWN.progress.append(self._values)

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        if name == "value":
            self._values.append(int(value))


def _next_file_answer(kind: str) -> str:
    if not FILE_ANSWERS:
        raise AssertionError(f"a {kind} dialog opened but the test prepared no answer (FILE_ANSWERS is empty)")
    return FILE_ANSWERS.popleft()


@register
class QFileDialog(PythonQtObject, QtWidgets.QFileDialog):
    """A file dialog whose static helpers answer from :data:`FILE_ANSWERS`."""

    @staticmethod
    def getExistingDirectory(*args, **kwargs) -> str:
        return _next_file_answer("directory")

    @staticmethod
    def getOpenFileName(*args, **kwargs) -> str:
        return _next_file_answer("open-file")

    @staticmethod
    def getSaveFileName(*args, **kwargs) -> str:
        return _next_file_answer("save-file")
