"""Every module's Qt Designer file loads cleanly and matches its module code.

Slicer's panels cannot run here, but their ``.ui`` files can be checked with PySide6's
QUiLoader (offscreen). For each ``<Module>/Resources/UI/*.ui`` of the repository:

1. every widget class is a Qt class or declared in ``<customwidgets>`` (an undeclared
   custom class silently vanishes when Qt loads the file), and every custom class
   extends a known class;
2. with a placeholder class registered for each custom widget (carrying the signals
   and slots its ``<connections>`` use), the file loads without a single Qt warning
   (enum and flag properties of custom widgets are left out: only the real class knows
   their types);
3. every ``self.ui.<name>`` used in ``<Module>.py`` names an object of the file;
4. every widget bound with the ``SlicerParameterName`` property names a field of the
   module's ``@parameterNodeWrapper`` class;
5. every interactive widget (buttons, boxes, sliders, selectors) has a tooltip;
6. every bound widget is of a class that Slicer's ``parameterNodeWrapper`` can connect to the
   field's type (read from the ``<Module>ParameterNode`` class imported through the headless
   host), with the annotation its connector needs (``Choice`` for a combo box holding a
   scalar, bounds for a slider): ``connectGui`` raises on anything else, in Slicer only.

The fixture module ``fixtures/UiCheck`` holds one good file and one file per defect, so
the check is exercised even before the modules have panels.
"""

from __future__ import annotations

import ast
import enum
import os
import pathlib
import re
import typing
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_MODULE = Path(__file__).resolve().parent / "fixtures" / "UiCheck" / "UiCheck.py"
FIXTURE_UI = FIXTURE_MODULE.parent / "Resources" / "UI"

# Widgets a user operates: they need a tooltip. Qt base classes (matched along <extends>)
# and Slicer/CTK widgets that the .ui files declare as plain QWidget.
INTERACTIVE_QT = {"QAbstractButton", "QPushButton", "QToolButton", "QCheckBox", "QRadioButton",
                  "QComboBox", "QFontComboBox", "QAbstractSpinBox", "QSpinBox", "QDoubleSpinBox",
                  "QDateTimeEdit", "QLineEdit", "QAbstractSlider", "QSlider", "QDial"}
INTERACTIVE_CUSTOM = {"qMRMLNodeComboBox", "qMRMLCheckableNodeComboBox", "qMRMLSegmentSelectorWidget",
                      "qMRMLSubjectHierarchyComboBox", "qMRMLSliderWidget", "qMRMLSpinBox",
                      "qMRMLRangeWidget", "qMRMLColorTableComboBox", "ctkSliderWidget", "ctkDoubleSpinBox",
                      "ctkRangeWidget", "ctkDoubleSlider", "ctkRangeSlider", "ctkPathLineEdit",
                      "ctkDirectoryButton", "ctkCheckBox", "ctkComboBox", "ctkCheckableComboBox",
                      "ctkColorPickerButton", "ctkMenuButton"}
SECTION_HEADERS = {"ctkCollapsibleButton", "ctkCollapsibleGroupBox"}  # titled sections, not controls
# What Slicer's GUI binding can connect: field kind -> widget class -> the annotation that
# connector needs on the field (None: none). Read from the ``canRepresent``/``__init__`` of each
# connector in Slicer's Base/Python/slicer/parameterNodeWrapper/guiConnectors.py, plus those the
# SubjectHierarchy and Markups modules register
# (Modules/Loadable/SubjectHierarchy/SubjectHierarchyLib/parameterNodeWrapper/guiConnectors.py,
# Modules/Loadable/Markups/MarkupsLib/parameterNodeWrapper/guiConnectors.py). Slicer matches the
# widget with ``type(widget) == ...``, so a subclass (ctkDoubleSpinBox, qMRMLSliderWidget,
# ctkCheckBox) is not accepted; ``unannotatedType`` strips only ``Annotated``, so an Optional
# scalar has no connector. (FloatRange -> ctkRangeWidget is left out: the host cannot declare it.)
SUPPORTED_BINDINGS: dict[str, dict[str, str | None]] = {
    "bool": {"QCheckBox": None, "QPushButton": None, "QComboBox": "Choice"},
    "int": {"QSpinBox": None, "QSlider": "bounds", "QComboBox": "Choice"},
    "float": {"QDoubleSpinBox": None, "ctkSliderWidget": "bounds", "QComboBox": "Choice"},
    "str": {"QLineEdit": None, "QTextEdit": None, "QComboBox": "Choice"},
    "Enum": {"QComboBox": None},
    "Path": {"ctkPathLineEdit": None, "ctkDirectoryButton": None},
    "MRML node": {"qMRMLNodeComboBox": None, "qMRMLSubjectHierarchyComboBox": None,
                  "qMRMLSubjectHierarchyTreeView": None, "qSlicerSimpleMarkupsWidget": None},
}
_PATH_TYPES = (pathlib.Path, pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePath,
               pathlib.PurePosixPath, pathlib.PureWindowsPath)
_SIGNATURE = re.compile(r"^(\w+)\((.*)\)$")
# Placeholder classes must outlive their loader: QUiLoader keeps only a weak reference.
_PLACEHOLDERS: list[type] = []


def repository_ui_files() -> list[Path]:
    """Every ``<Module>/Resources/UI/*.ui`` of the repository."""
    return sorted(REPO_ROOT.glob("*/Resources/UI/*.ui"))


def _module_file(ui_path: Path) -> Path:
    """``<Module>/<Module>.py`` for ``<Module>/Resources/UI/<file>.ui``."""
    folder = ui_path.parents[2]
    return folder / f"{folder.name}.py"


# -- reading the .ui and the module file -------------------------------------------------------------
def _custom_widgets(root: ET.Element) -> dict[str, str]:
    """Declared custom widget class -> the class it extends."""
    return {cw.findtext("class", "").strip(): cw.findtext("extends", "").strip()
            for cw in root.iter("customwidget")}


def _object_names(root: ET.Element) -> set[str]:
    return {el.get("name") for tag in ("widget", "layout", "action") for el in root.iter(tag)
            if el.get("name")}


def _string_property(widget: ET.Element, name: str) -> str | None:
    for prop in widget.findall("property"):
        if prop.get("name") == name:
            return (prop.findtext("string") or "").strip()
    return None


def _ui_attributes(module_file: Path) -> dict[str, int]:
    """``self.ui.<name>`` uses of a module file: name -> first line."""
    uses: dict[str, int] = {}
    for node in ast.walk(ast.parse(module_file.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "ui" and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "self"):
            uses.setdefault(node.attr, node.lineno)
    return uses


def _parameter_fields(module_file: Path) -> set[str] | None:
    """Field names of the module's ``@parameterNodeWrapper`` class(es), None if it has none."""
    fields, found = set(), False
    for node in ast.walk(ast.parse(module_file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef) and any(
                (d.id if isinstance(d, ast.Name) else getattr(d, "attr", "")) == "parameterNodeWrapper"
                for d in node.decorator_list):
            found = True
            fields |= {item.target.id for item in node.body
                       if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)}
    return fields if found else None


# -- loading with Qt ---------------------------------------------------------------------------------
def _qt_application():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtWidgets

    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


def _signatures(root: ET.Element, classes: dict[str, str]) -> dict[str, dict[str, set[tuple[str, ...]]]]:
    """For each widget class: the signals and slots its connections use (name -> argument lists)."""
    members: dict[str, dict[str, set[tuple[str, ...]]]] = {}
    for connection in root.iter("connection"):
        for role, kind in (("sender", "signal"), ("receiver", "slot")):
            match = _SIGNATURE.match((connection.findtext(kind) or "").replace(" ", ""))
            cls = classes.get((connection.findtext(role) or "").strip())
            if match and cls:
                args = tuple(a for a in match.group(2).split(",") if a)
                members.setdefault(cls, {}).setdefault(f"{kind}:{match.group(1)}", set()).add(args)
    return members


def _placeholder(name: str, base: type, members: dict[str, set[tuple[str, ...]]]) -> type:
    from PySide6 import QtCore

    namespace = {"__init__": lambda self, parent=None: base.__init__(self, parent)}
    for key, overloads in members.items():
        kind, member = key.split(":")
        if kind == "signal":
            namespace[member] = QtCore.Signal(*[list(a) for a in sorted(overloads)]) if len(overloads) > 1 \
                else QtCore.Signal(*next(iter(overloads)))
        else:
            def slot(self, *args):
                """Placeholder slot: accepts the connection, does nothing."""
            for args in sorted(overloads):
                slot = QtCore.Slot(*args, name=member)(slot)
            namespace[member] = slot
    cls = type(name, (base,), namespace)
    _PLACEHOLDERS.append(cls)
    return cls


def _load_warnings(root: ET.Element, custom: dict[str, str]) -> list[str]:
    """Qt warnings (and failures) while QUiLoader builds the file with placeholder custom widgets."""
    _qt_application()
    from PySide6 import QtCore, QtWidgets
    from PySide6.QtUiTools import QUiLoader

    loader = QUiLoader()
    classes = {el.get("name"): el.get("class") for el in root.iter("widget")}
    members = _signatures(root, classes)
    built: dict[str, type] = {}

    def build(name: str, chain: tuple[str, ...] = ()) -> type:
        if name in built:
            return built[name]
        extends = custom[name]
        if extends in custom and extends not in chain:
            base = build(extends, (*chain, name))
        else:
            base = getattr(QtWidgets, extends)
        built[name] = _placeholder(name, base, members.get(name, {}))
        loader.registerCustomWidget(built[name])
        return built[name]

    for name in custom:
        build(name)
    # A placeholder does not know the enum and flag types of the real widget's properties
    # (ctkSliderWidget.orientation, ctkPathLineEdit.filters): Qt cannot read those values, so
    # they are left out; every other property of custom widgets becomes a dynamic property.
    for widget in root.iter("widget"):
        if widget.get("class") in custom:
            for prop in list(widget.findall("property")):
                if prop.find("enum") is not None or prop.find("set") is not None:
                    widget.remove(prop)
    buffer = QtCore.QBuffer()
    buffer.setData(QtCore.QByteArray(ET.tostring(root)))
    buffer.open(QtCore.QIODevice.OpenModeFlag.ReadOnly)
    messages: list[str] = []
    previous = QtCore.qInstallMessageHandler(lambda mode, context, text: messages.append(text))
    try:
        widget = loader.load(buffer)
    finally:
        QtCore.qInstallMessageHandler(previous)
    if widget is None:
        messages.append(f"QUiLoader could not load the file: {loader.errorString()}")
    else:
        widget.deleteLater()
    return [f"Qt warning: {m}" for m in messages]


def ui_problems(ui_path: Path, module_file: Path) -> list[str]:
    """Everything wrong with one .ui file and its module file (empty list: clean)."""
    root = ET.parse(ui_path).getroot()
    custom = _custom_widgets(root)
    _qt_application()
    from PySide6 import QtWidgets

    # Qt's own widget classes (QUiLoader's list would also hold placeholders registered before),
    # plus Designer's "Line" (a QFrame).
    qt_classes = {name for name in dir(QtWidgets)
                  if isinstance(getattr(QtWidgets, name), type) and issubclass(getattr(QtWidgets, name),
                                                                              QtWidgets.QWidget)} | {"Line"}
    problems = []
    for name, extends in custom.items():
        if extends not in custom and not hasattr(QtWidgets, extends):
            problems.append(f"custom widget {name} extends {extends!r}, neither a Qt widget nor declared")
    for widget in root.iter("widget"):
        cls = widget.get("class")
        if cls not in qt_classes and cls not in custom:
            problems.append(f"widget {widget.get('name')!r} of class {cls} is not declared in "
                            "<customwidgets>")
    if problems:
        return problems  # loading would drop or misbuild these widgets
    problems += _load_warnings(ET.parse(ui_path).getroot(), custom)

    names = _object_names(root)
    if not module_file.is_file():
        return [*problems, f"module file {module_file} not found"]
    for attribute, line in sorted(_ui_attributes(module_file).items()):
        if attribute not in names:
            problems.append(f"{module_file.name}:{line} uses self.ui.{attribute}, which {ui_path.name} lacks")
    fields = _parameter_fields(module_file)
    for widget in root.iter("widget"):
        parameter = _string_property(widget, "SlicerParameterName")
        if parameter is None:
            continue
        if fields is None:
            problems.append(f"widget {widget.get('name')!r} is bound to {parameter!r} but "
                            f"{module_file.name} has no @parameterNodeWrapper class")
        elif parameter.split(".")[0] not in fields:
            problems.append(f"widget {widget.get('name')!r} is bound to {parameter!r}, not a parameter of "
                            f"{module_file.name} ({sorted(fields)})")
    for widget in root.iter("widget"):
        if _is_interactive(widget.get("class"), custom) and not _string_property(widget, "toolTip"):
            problems.append(f"widget {widget.get('name')!r} ({widget.get('class')}) has no toolTip")
    return problems


def _is_interactive(cls: str, custom: dict[str, str]) -> bool:
    seen = set()
    while cls and cls not in seen:
        if cls in SECTION_HEADERS:
            return False
        if cls in INTERACTIVE_QT or cls in INTERACTIVE_CUSTOM:
            return True
        seen.add(cls)
        cls = custom.get(cls, "")
    return False


# -- bound widgets against the parameter node's field types -----------------------------------------
def parameter_types(module_file: Path) -> dict[str, object] | None:
    """Field name -> type (``Annotated`` kept) of ``<Module>ParameterNode``, imported through the
    headless host; None when the module defines no such class."""
    from slicer_host import load_scripted_module

    wrapper = load_scripted_module(module_file).member("ParameterNode")
    if wrapper is None:
        return None
    return {name: hint for name, hint in typing.get_type_hints(wrapper, include_extras=True).items()
            if not name.startswith("_")}


def _is_node_or_union_of_nodes(hint) -> bool:
    """As Slicer's ``isNodeOrUnionOfNodes``: an MRML node class, or a Union of them and None."""
    import slicer

    def is_node(kind) -> bool:
        return isinstance(kind, type) and issubclass(kind, slicer.vtkMRMLNode)

    if typing.get_origin(hint) is typing.Union:
        return all(kind is type(None) or is_node(kind) for kind in typing.get_args(hint))
    return is_node(hint)


def _split_annotated(hint) -> tuple[object, tuple]:
    """``Annotated[T, a, b]`` -> ``(T, (a, b))``; any other type -> ``(type, ())``."""
    if typing.get_origin(hint) is typing.Annotated:
        return typing.get_args(hint)[0], hint.__metadata__
    return hint, ()


def _field_kind(hint) -> str | None:
    """The row of :data:`SUPPORTED_BINDINGS` for an unannotated field type (None: no connector)."""
    if _is_node_or_union_of_nodes(hint):
        return "MRML node"
    if hint in (bool, int, float, str):
        return hint.__name__
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "Enum"
    if hint in _PATH_TYPES:
        return "Path"
    return None


def _type_text(hint) -> str:
    """``float``, ``vtkMRMLScalarVolumeNode``, ``Union[vtkMRMLMarkupsPlaneNode, None]``, ``list[int]``."""
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    origin = typing.get_origin(hint)
    name = getattr(origin, "__name__", None) or str(origin).removeprefix("typing.")
    return f"{name}[{', '.join(_type_text(a) for a in typing.get_args(hint))}]"


def _has_annotation(requirement: str, annotations: tuple) -> bool:
    from slicer.parameterNodeWrapper import Choice, Maximum, Minimum, WithinRange

    if requirement == "Choice":
        return any(isinstance(a, Choice) for a in annotations)
    # "bounds": WithinRange, or both Minimum and Maximum (Slicer's isBounded)
    return (any(isinstance(a, WithinRange) for a in annotations)
            or (any(isinstance(a, Minimum) for a in annotations)
                and any(isinstance(a, Maximum) for a in annotations)))


def binding_problems(ui_path: Path, module_file: Path) -> list[str]:
    """Bound widgets that Slicer's ``connectGui`` could not connect to their field (empty: clean).

    Names absent from the parameter node are reported by :func:`ui_problems`, not here.
    """
    module = module_file.stem
    bound = [(w.get("name"), w.get("class"), _string_property(w, "SlicerParameterName"))
             for w in ET.parse(ui_path).getroot().iter("widget")]
    bound = [(name, cls, parameter) for name, cls, parameter in bound if parameter is not None]
    if not bound:
        return []
    types = parameter_types(module_file)
    if types is None:
        return [f"{module}: {ui_path.name} binds widgets but {module_file.name} defines no "
                f"{module}ParameterNode class"]
    problems = []
    for name, cls, parameter in bound:
        field, _, member = parameter.partition(".")
        if field not in types:
            continue
        hint, annotations = _split_annotated(types[field])
        where = f"{module}: widget {name!r} ({cls}) is bound to {parameter!r} of type {_type_text(hint)}"
        kind = _field_kind(hint)
        if member:
            problems.append(f"{where}, which is not a parameterPack with a member {member!r}")
        elif kind is None:
            problems.append(f"{where}, which Slicer's parameterNodeWrapper binds to no widget")
        elif cls not in SUPPORTED_BINDINGS[kind]:
            problems.append(f"{where}, which Slicer's parameterNodeWrapper binds only to "
                            f"{', '.join(sorted(SUPPORTED_BINDINGS[kind]))}")
        elif (requirement := SUPPORTED_BINDINGS[kind][cls]) and not _has_annotation(requirement, annotations):
            needs = "a Choice annotation" if requirement == "Choice" else "WithinRange (or Minimum and Maximum)"
            problems.append(f"{where}; Slicer's {cls} connector needs {needs} on the field")
    return problems


# -- tests -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ui_path", [*repository_ui_files(), FIXTURE_UI / "UiCheck.ui"],
                         ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_ui_file_loads_cleanly_and_matches_its_module(ui_path):
    module_file = FIXTURE_MODULE if ui_path.parent == FIXTURE_UI else _module_file(ui_path)
    assert ui_problems(ui_path, module_file) == []


def test_every_module_with_a_widget_has_its_ui_file():
    from slicer_host import module_files

    for module_file in module_files():
        if "loadUI(" in module_file.read_text(encoding="utf-8"):
            expected = module_file.parent / "Resources" / "UI" / f"{module_file.stem}.ui"
            assert expected.is_file(), f"{module_file.name} loads a .ui but {expected} does not exist"


@pytest.mark.parametrize(("defect", "expected"), [
    ("UndeclaredClass", ["widget 'spectSelector' of class qMRMLNodeComboBox is not declared in "
                         "<customwidgets>"]),
    ("QtWarning", [r'Qt warning: .*"Qt::NoSuchFocus" of the enum-type property focusPolicy '
                   r"could not be read\."]),
    ("MissingWidget", [r"UiCheck.py:\d+ uses self.ui.applyButton, which MissingWidget.ui lacks"]),
    ("UnknownParameter", [r"widget 'marginSlider' is bound to 'marginCm', not a parameter of UiCheck.py "
                          r"\(\['marginMm', 'patientId', "
                          r"'spectVolume', 'thresholdBqPerMl'\]\)"]),
    ("MissingToolTip", [r"widget 'applyButton' \(QPushButton\) has no toolTip"]),
])
def test_ui_check_reports_each_defect(defect, expected):
    problems = ui_problems(FIXTURE_UI / f"{defect}.ui", FIXTURE_MODULE)
    assert len(problems) == len(expected), problems
    for problem, pattern in zip(problems, expected, strict=True):
        assert re.fullmatch(pattern, problem), problem


@pytest.mark.parametrize("ui_path", [*repository_ui_files(), FIXTURE_UI / "UiCheck.ui"],
                         ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_bound_widgets_are_classes_slicer_connects_to_their_field_type(host, ui_path):
    module_file = FIXTURE_MODULE if ui_path.parent == FIXTURE_UI else _module_file(ui_path)
    assert binding_problems(ui_path, module_file) == []


def test_good_fixture_binds_every_field_of_its_parameter_node(host):
    # The clean fixture must exercise the check: each of its fields is bound in UiCheck.ui.
    types = parameter_types(FIXTURE_MODULE)
    assert {name: _field_kind(_split_annotated(hint)[0]) for name, hint in types.items()} == {
        "spectVolume": "MRML node", "marginMm": "float", "thresholdBqPerMl": "float", "patientId": "str"}
    bound = {_string_property(w, "SlicerParameterName")
             for w in ET.parse(FIXTURE_UI / "UiCheck.ui").getroot().iter("widget")} - {None}
    assert bound == set(types)


def test_binding_check_reports_each_incompatible_widget(host):
    problems = binding_problems(FIXTURE_UI / "IncompatibleBinding.ui", FIXTURE_MODULE)
    assert problems == [
        "UiCheck: widget 'spectComboBox' (QComboBox) is bound to 'spectVolume' of type "
        "vtkMRMLScalarVolumeNode, which Slicer's parameterNodeWrapper binds only to qMRMLNodeComboBox, "
        "qMRMLSubjectHierarchyComboBox, qMRMLSubjectHierarchyTreeView, qSlicerSimpleMarkupsWidget",
        "UiCheck: widget 'marginLineEdit' (QLineEdit) is bound to 'marginMm' of type float, which Slicer's "
        "parameterNodeWrapper binds only to QComboBox, QDoubleSpinBox, ctkSliderWidget",
        "UiCheck: widget 'thresholdSlider' (ctkSliderWidget) is bound to 'thresholdBqPerMl' of type float; "
        "Slicer's ctkSliderWidget connector needs WithinRange (or Minimum and Maximum) on the field",
        "UiCheck: widget 'patientIdComboBox' (QComboBox) is bound to 'patientId' of type str; "
        "Slicer's QComboBox connector needs a Choice annotation on the field",
    ]



class _Route(enum.Enum):
    IA = "intra-arterial"
    IV = "intravenous"


@pytest.mark.parametrize(("hint", "kind"), [
    (bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (pathlib.Path, "Path"), (_Route, "Enum"),
    # Slicer strips only Annotated: an Optional, a list or a union of scalars has no connector.
    (typing.Optional[float], None), (float | None, None), (list[int], None),  # noqa: UP045
    (typing.Union[int, str], None),  # noqa: UP007
], ids=str)
def test_field_kind_follows_slicer_connectors(hint, kind):
    assert _field_kind(hint) == kind


def test_node_and_union_of_nodes_are_node_fields(host):
    import slicer

    assert _field_kind(slicer.vtkMRMLScalarVolumeNode) == "MRML node"
    assert _field_kind(typing.Union[slicer.vtkMRMLMarkupsPlaneNode,  # noqa: UP007
                                    slicer.vtkMRMLMarkupsFiducialNode, None]) == "MRML node"
    assert _field_kind(typing.Union[slicer.vtkMRMLScalarVolumeNode, int]) is None  # noqa: UP007
