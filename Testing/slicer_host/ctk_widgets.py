"""Minimal PySide6 versions of the CTK widgets that the modules' .ui files and Slicer's layer use.

Each keeps the CTK class name, Qt properties and signals that the code and the .ui files touch
(so ``.ui`` property values load into them and Slicer's GUI connectors bind to them); the look
is plain Qt. ``FILTER_FLAGS`` maps ``ctkPathLineEdit::Filter`` names to CTK's flag values, so the
.ui loader can turn a ``<set>`` of them into a number.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from .pythonqt import qt_class, register

# ctkPathLineEdit::Filter (CTK Libs/Widgets/ctkPathLineEdit.h), which mirrors QDir::Filter.
FILTER_FLAGS = {"Dirs": 0x001, "Files": 0x002, "Drives": 0x004, "NoSymLinks": 0x008, "AllEntries": 0x007,
                "Readable": 0x010, "Writable": 0x020, "Executable": 0x040, "Hidden": 0x100, "System": 0x200}


@register
class ctkCollapsibleButton(qt_class("QGroupBox")):
    """A titled container whose ``collapsed`` property hides its contents."""

    contentsCollapsed = QtCore.Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._collapsed = False

    def _text(self) -> str:
        return QtWidgets.QGroupBox.title(self)

    def _setText(self, text: str) -> None:
        self.setTitle(text)

    def _isCollapsed(self) -> bool:
        return self._collapsed

    def _setCollapsed(self, collapsed: bool) -> None:
        self._collapsed = bool(collapsed)
        for child in self.findChildren(QtWidgets.QWidget, options=QtCore.Qt.FindChildOption.FindDirectChildrenOnly):
            child.setVisible(not self._collapsed)
        self.contentsCollapsed.emit(self._collapsed)

    text = QtCore.Property(str, _text, _setText)
    collapsed = QtCore.Property(bool, _isCollapsed, _setCollapsed)


@register
class ctkSliderWidget(qt_class("QWidget")):
    """A slider and a spin box showing one floating-point value (``valueChanged(double)``)."""

    valueChanged = QtCore.Signal(float)
    _SLIDER_STEPS = 1000

    def __init__(self, parent=None):
        super().__init__(parent)
        self._spin = QtWidgets.QDoubleSpinBox(self)
        self._slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal, self)
        self._slider.setRange(0, self._SLIDER_STEPS)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._slider)
        layout.addWidget(self._spin)
        self._spin.valueChanged.connect(self._onSpinChanged)
        self._slider.valueChanged.connect(self._onSliderMoved)

    def _onSpinChanged(self, value: float) -> None:
        span = self._spin.maximum() - self._spin.minimum()
        if span > 0 and span != float("inf"):
            blocked = self._slider.blockSignals(True)
            self._slider.setValue(round(self._SLIDER_STEPS * (value - self._spin.minimum()) / span))
            self._slider.blockSignals(blocked)
        self.valueChanged.emit(value)

    def _onSliderMoved(self, position: int) -> None:
        span = self._spin.maximum() - self._spin.minimum()
        self._spin.setValue(self._spin.minimum() + span * position / self._SLIDER_STEPS)

    def _value(self) -> float:
        return self._spin.value()

    def _setValue(self, value: float) -> None:
        self._spin.setValue(value)

    value = QtCore.Property(float, _value, _setValue)
    minimum = QtCore.Property(float, lambda self: self._spin.minimum(), lambda self, v: self._spin.setMinimum(v))
    maximum = QtCore.Property(float, lambda self: self._spin.maximum(), lambda self, v: self._spin.setMaximum(v))
    singleStep = QtCore.Property(float, lambda self: self._spin.singleStep(),
                                 lambda self, v: self._spin.setSingleStep(v))
    decimals = QtCore.Property(int, lambda self: self._spin.decimals(), lambda self, v: self._spin.setDecimals(v))
    suffix = QtCore.Property(str, lambda self: self._spin.suffix(), lambda self, v: self._spin.setSuffix(v))
    prefix = QtCore.Property(str, lambda self: self._spin.prefix(), lambda self, v: self._spin.setPrefix(v))


@register
class ctkPathLineEdit(qt_class("QWidget")):
    """A line edit holding a file path (``currentPath``, ``currentPathChanged(QString)``)."""

    currentPathChanged = QtCore.Signal(str)
    Files = FILTER_FLAGS["Files"]
    Dirs = FILTER_FLAGS["Dirs"]
    Readable = FILTER_FLAGS["Readable"]
    Writable = FILTER_FLAGS["Writable"]

    def __init__(self, parent=None):
        super().__init__(parent)
        self._edit = QtWidgets.QLineEdit(self)
        self._browse = QtWidgets.QToolButton(self)
        self._browse.setText("...")
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._edit)
        layout.addWidget(self._browse)
        self._filters = FILTER_FLAGS["AllEntries"]
        self._edit.textChanged.connect(self.currentPathChanged.emit)

    def _currentPath(self) -> str:
        return self._edit.text()

    def _setCurrentPath(self, path: str) -> None:
        self._edit.setText(path)

    def _getFilters(self) -> int:
        return self._filters

    def _setFilters(self, filters: int) -> None:
        self._filters = int(filters)

    currentPath = QtCore.Property(str, _currentPath, _setCurrentPath)
    filters = QtCore.Property(int, _getFilters, _setFilters)


@register
class ctkDirectoryButton(qt_class("QPushButton")):
    """A button showing a directory (``directory``, ``directoryChanged(QString)``).

    Clicking opens ``qt.QFileDialog.getExistingDirectory``, which the test host answers.
    """

    directoryChanged = QtCore.Signal(str)
    directorySelected = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._directory = ""
        self._caption = ""
        self.clicked.connect(self.browse)

    def browse(self) -> None:
        import qt

        chosen = qt.QFileDialog.getExistingDirectory(self, self._caption, self._directory)
        if chosen:
            self._setDirectory(chosen)
            self.directorySelected.emit(chosen)

    def _getDirectory(self) -> str:
        return self._directory

    def _setDirectory(self, directory: str) -> None:
        if directory != self._directory:
            self._directory = directory
            self.setText(directory)
            self.directoryChanged.emit(directory)

    directory = QtCore.Property(str, _getDirectory, _setDirectory)
    caption = QtCore.Property(str, lambda self: self._caption, lambda self, v: setattr(self, "_caption", v))


@register
class ctkDoubleSpinBox(qt_class("QDoubleSpinBox")):
    """CTK's double spin box: a QDoubleSpinBox here."""


@register
class ctkCheckBox(qt_class("QCheckBox")):
    """CTK's check box: a QCheckBox here."""


@register
class ctkComboBox(qt_class("QComboBox")):
    """CTK's combo box: a QComboBox here."""


@register
class ctkCheckablePushButton(qt_class("QPushButton")):
    """CTK's push button with a check box: a checkable QPushButton here."""


@register
class ctkColorPickerButton(qt_class("QPushButton")):
    """CTK's colour button: a push button here (no module binds a colour)."""


@register
class ctkDoubleSlider(qt_class("QSlider")):
    """CTK's floating-point slider: an integer QSlider here (no module binds one)."""


@register
class ctkRangeWidget(qt_class("QWidget")):
    """CTK's range widget: named so Slicer's GUI connector table resolves (no module binds a range)."""


@register
class ctkDoubleRangeSlider(qt_class("QWidget")):
    """CTK's range slider: named so Slicer's GUI connector table resolves (no module binds a range)."""


WIDGET_CLASSES = (ctkCollapsibleButton, ctkSliderWidget, ctkPathLineEdit, ctkDirectoryButton, ctkDoubleSpinBox,
                  ctkCheckBox, ctkComboBox, ctkCheckablePushButton, ctkColorPickerButton, ctkDoubleSlider,
                  ctkRangeWidget, ctkDoubleRangeSlider)
