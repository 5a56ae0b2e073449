"""Stand-in for ``slicer.parameterNodeWrapper`` (typed parameter nodes), headless.

A class decorated with :func:`parameterNodeWrapper` declares typed fields::

    @parameterNodeWrapper
    class LobeQuantParameterNode:
        spectVolume: vtkMRMLScalarVolumeNode
        marginMm: Annotated[float, WithinRange(0.0, 20.0)] = 3.0
        route: Annotated[str, Choice(["IA", "IV"])] = "IA"

and wraps a ``vtkMRMLScriptedModuleNode``: scalar fields are stored as parameter
strings, node fields as node references (role = field name), so values survive a
scene save/load and two wrappers of one node see the same values. Validators
(:class:`WithinRange`, :class:`Minimum`, :class:`Maximum`, :class:`Choice`) raise
``ValueError`` on a bad value; a node of the wrong class raises ``TypeError``.
GUI binding (``connectGui``) does nothing headless.

Supported field types: bool, int, float, str, pathlib.Path, enum.Enum subclasses,
``list[bool|int|float|str]``, MRML node classes, ``typing.Optional[X]`` of these and
``typing.Union[NodeClassA, NodeClassB, None]``. Anything else raises ``TypeError`` when
the class is decorated, so a module using a type this stand-in does not know fails loudly
instead of silently.

The stand-in is never more permissive than Slicer's wrapper, so that what passes here
also loads in Slicer:

* PEP 604 unions (``X | None``, ``NodeA | NodeB``) are refused: Slicer's serializers
  recognise only ``typing.Union`` (``get_origin(t) == typing.Union``), and on Slicer's
  Python (3.12) ``get_origin(X | None)`` is ``types.UnionType``.
* a union of node classes must include ``None``: Slicer writes the default ``None``
  when it wraps a node, and no member of ``Union[NodeA, NodeB]`` can store ``None``.
* values are checked as Slicer's ``IsInstance`` validators do: a bool field takes a
  ``bool`` (not 1 or ``numpy.bool_``), an int field an ``int``, a float field an ``int`` or
  ``float`` (not ``numpy.float32``), a Path field a ``pathlib.Path``, an Enum field a member.
"""

from __future__ import annotations

import enum
import json
import pathlib
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any

_SCALARS = (bool, int, float, str, pathlib.Path)
_MISSING = object()


@dataclass(frozen=True)
class Default:
    """Default value of a field given in its ``Annotated`` metadata."""

    value: Any


@dataclass(frozen=True)
class WithinRange:
    """Closed interval ``[minimum, maximum]`` a numeric field must lie in."""

    minimum: float
    maximum: float

    def validate(self, name: str, value) -> None:
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"parameter {name!r}: {value!r} is not within [{self.minimum}, {self.maximum}]")


@dataclass(frozen=True)
class Minimum:
    """Lower bound (inclusive) of a numeric field."""

    minimum: float

    def validate(self, name: str, value) -> None:
        if value < self.minimum:
            raise ValueError(f"parameter {name!r}: {value!r} is below the minimum {self.minimum}")


@dataclass(frozen=True)
class Maximum:
    """Upper bound (inclusive) of a numeric field."""

    maximum: float

    def validate(self, name: str, value) -> None:
        if value > self.maximum:
            raise ValueError(f"parameter {name!r}: {value!r} is above the maximum {self.maximum}")


@dataclass(frozen=True)
class Choice:
    """The field's value must be one of ``choices``."""

    choices: tuple | list

    def validate(self, name: str, value) -> None:
        if value not in self.choices:
            raise ValueError(f"parameter {name!r}: {value!r} is not one of {list(self.choices)}")


@dataclass(frozen=True)
class Decimals:
    """GUI hint (spin box decimals); no effect headless."""

    decimals: int


@dataclass(frozen=True)
class SingleStep:
    """GUI hint (spin box step); no effect headless."""

    step: float


@dataclass(frozen=True)
class ParameterInfo:
    """One declared field: its base type(s), optionality, default and validators."""

    name: str
    kind: type | tuple[type, ...]
    item_kind: type | None
    optional: bool
    default: Any
    validators: tuple
    is_node: bool

    def check(self, value) -> None:
        if value is None:
            if not self.optional and not self.is_node:
                raise ValueError(f"parameter {self.name!r} is not optional; None is not allowed")
            return
        if self.is_node:
            if not isinstance(value, self.kind):
                got = value.GetClassName() if hasattr(value, "GetClassName") else type(value).__name__
                raise TypeError(f"parameter {self.name!r} expects {_kind_names(self.kind)}, got {got}")
            if not value.GetID():
                raise ValueError(f"parameter {self.name!r}: node {value.GetName()!r} is not in a scene")
            return
        if not _has_kind(self, value):
            raise TypeError(f"parameter {self.name!r} expects {_kind_names(self.kind)}, got {value!r}")
        for validator in self.validators:
            if hasattr(validator, "validate"):
                validator.validate(self.name, value)


def _has_kind(info: ParameterInfo, value) -> bool:
    if info.kind is list:
        return isinstance(value, list | tuple) and all(_scalar_is(info.item_kind, v) for v in value)
    return _scalar_is(info.kind, value)


def _scalar_is(kind: type, value) -> bool:
    """As Slicer's ``IsInstance`` validators (a bool is also refused where a number is meant)."""
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def _kind_names(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _mrml_node_class() -> type:
    import slicer

    return slicer.vtkMRMLNode


def _is_node_class(kind) -> bool:
    return isinstance(kind, type) and issubclass(kind, _mrml_node_class())


def _field(owner: str, name: str, hint, class_default) -> ParameterInfo:
    validators: tuple = ()
    default = class_default
    if typing.get_origin(hint) is typing.Annotated:
        validators = tuple(hint.__metadata__)
        for item in validators:
            if isinstance(item, Default):
                default = item.value
        hint = typing.get_args(hint)[0]
    optional = False
    kinds: tuple = (hint,)
    if typing.get_origin(hint) is types.UnionType and types.UnionType is not typing.Union:
        raise TypeError(f"{owner}.{name}: write typing.Union[...] or typing.Optional[...] instead of {hint}: "
                        "Slicer's parameterNodeWrapper does not recognise 'X | Y' unions")
    if typing.get_origin(hint) is typing.Union:
        kinds = tuple(k for k in typing.get_args(hint) if k is not type(None))
        optional = len(kinds) < len(typing.get_args(hint))
    item_kind = None
    if all(_is_node_class(k) for k in kinds):
        if len(kinds) > 1 and not optional:
            raise TypeError(f"{owner}.{name}: a union of node classes must include None "
                            f"(typing.Union[..., None]); Slicer cannot store the empty default in {hint}")
        kind = kinds if len(kinds) > 1 else kinds[0]
        is_node = True
    elif len(kinds) == 1 and typing.get_origin(kinds[0]) is list:
        kind, is_node = list, False
        (item_kind,) = typing.get_args(kinds[0]) or (None,)
        if item_kind not in (bool, int, float, str):
            raise TypeError(f"{owner}.{name}: list items must be bool, int, float or str, got {item_kind}")
    elif len(kinds) == 1 and (kinds[0] in _SCALARS
                              or (isinstance(kinds[0], type) and issubclass(kinds[0], enum.Enum))):
        kind, is_node = kinds[0], False
    else:
        raise TypeError(f"{owner}.{name}: type {hint} is not supported by the headless parameterNodeWrapper "
                        "stand-in (bool, int, float, str, Path, Enum, list[...], MRML node classes)")
    if default is _MISSING:
        default = _type_default(kind, optional or is_node)
    return ParameterInfo(name, kind, item_kind, optional, default, validators, is_node)


def _type_default(kind, nullable: bool):
    if nullable:
        return None
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return next(iter(kind))
    return kind()


def _encode(info: ParameterInfo, value) -> str:
    if info.kind is bool:
        return "true" if value else "false"
    if info.kind is float:
        return repr(float(value))
    if info.kind is list:
        return json.dumps([info.item_kind(v) for v in value])
    if isinstance(info.kind, type) and issubclass(info.kind, enum.Enum):
        return info.kind(value).name
    if info.kind is pathlib.Path:
        return pathlib.Path(value).as_posix()
    return str(info.kind(value))


def _decode(info: ParameterInfo, text: str):
    if info.kind is bool:
        return text.lower() in ("true", "1")
    if info.kind is list:
        return [info.item_kind(v) for v in json.loads(text)]
    if isinstance(info.kind, type) and issubclass(info.kind, enum.Enum):
        return info.kind[text]
    return info.kind(text)


def _get(self, info: ParameterInfo):
    node = self.parameterNode
    if info.is_node:
        return node.GetNodeReference(info.name)
    if info.name not in (node.GetParameterNames() or ()):
        return None if info.optional else info.default
    return _decode(info, node.GetParameter(info.name))


def _set(self, info: ParameterInfo, value) -> None:
    info.check(value)
    node = self.parameterNode
    if info.is_node:
        node.SetNodeReferenceID(info.name, value.GetID() if value is not None else None)
    elif value is None:
        node.UnsetParameter(info.name)
    else:
        node.SetParameter(info.name, _encode(info, value))


def _wrapper_init(self, parameterNode) -> None:
    import slicer

    if not isinstance(parameterNode, slicer.vtkMRMLScriptedModuleNode):
        raise ValueError(f"{type(self).__name__} wraps a vtkMRMLScriptedModuleNode, got {parameterNode!r}")
    object.__setattr__(self, "parameterNode", parameterNode)
    present = set(parameterNode.GetParameterNames() or ())
    for info in self.allParameters.values():
        if not info.is_node and info.name not in present and info.default is not None:
            _set(self, info, info.default)


def _wrapper_setattr(self, name: str, value) -> None:
    if name in type(self).allParameters or name.startswith("_"):
        object.__setattr__(self, name, value)
        return
    raise AttributeError(f"{type(self).__name__} has no parameter {name!r}; "
                         f"declared: {sorted(type(self).allParameters)}")


def _set_value(self, name: str, value) -> None:
    """Set a parameter by name (as ``setattr``)."""
    setattr(self, name, value)


def _get_value(self, name: str):
    """Value of a parameter by name (as ``getattr``)."""
    if name not in type(self).allParameters:
        raise AttributeError(f"{type(self).__name__} has no parameter {name!r}")
    return getattr(self, name)


def _connect_gui(self, gui) -> int:
    """Bind widgets to parameters: nothing to bind headless; returns a tag for ``disconnectGui``."""
    return id(gui)


def _disconnect_gui(self, tag: int) -> None:
    """Undo :func:`_connect_gui` (nothing to undo headless)."""


def _add_observer(self, event, callback) -> int:
    return self.parameterNode.AddObserver(event, callback)


def _remove_observer(self, tag: int) -> None:
    self.parameterNode.RemoveObserver(tag)


def _start_modify(self) -> int:
    return self.parameterNode.StartModify()


def _end_modify(self, was_modifying: int) -> None:
    self.parameterNode.EndModify(was_modifying)


def parameterNodeWrapper(cls: type) -> type:
    """Turn a class with typed field annotations into a wrapper of a scripted module node."""
    module_globals = vars(sys.modules[cls.__module__]) if cls.__module__ in sys.modules else None
    hints = typing.get_type_hints(cls, globalns=module_globals, include_extras=True)
    fields = {name: _field(cls.__name__, name, hint, cls.__dict__.get(name, _MISSING))
              for name, hint in hints.items() if not name.startswith("_")}
    for info in fields.values():
        if info.default is not None and not info.is_node:
            info.check(info.default)
        setattr(cls, info.name, property(lambda self, info=info: _get(self, info),
                                         lambda self, value, info=info: _set(self, info, value)))
    cls.allParameters = fields
    cls.__init__ = _wrapper_init
    cls.__setattr__ = _wrapper_setattr
    cls.setValue = _set_value
    cls.getValue = _get_value
    cls.connectGui = _connect_gui
    cls.disconnectGui = _disconnect_gui
    cls.AddObserver = _add_observer
    cls.RemoveObserver = _remove_observer
    cls.StartModify = _start_modify
    cls.EndModify = _end_modify
    cls._is_parameter_node_wrapper = True
    return cls


def isParameterNodeWrapper(obj) -> bool:
    """True for a class made by :func:`parameterNodeWrapper` or an instance of one."""
    return bool(getattr(obj, "_is_parameter_node_wrapper", False))


def make_module() -> types.ModuleType:
    module = types.ModuleType("slicer.parameterNodeWrapper", __doc__)
    for name in ("parameterNodeWrapper", "isParameterNodeWrapper", "Default", "WithinRange", "Minimum",
                 "Maximum", "Choice", "Decimals", "SingleStep", "ParameterInfo"):
        setattr(module, name, globals()[name])
    sys.modules["slicer.parameterNodeWrapper"] = module
    return module
