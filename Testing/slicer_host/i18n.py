"""Stand-in for ``slicer.i18n``: translation functions that return the source text.

Slicer translates user-visible strings through Qt's translator; headless there is
no translator, so ``tr``/``translate`` are the identity (as Slicer with no language
pack loaded).
"""

from __future__ import annotations

import sys
import types


def translate(context: str, text: str) -> str:
    """Translation of ``text`` in ``context``: the text itself (no translator loaded)."""
    return text


def tr(text: str) -> str:
    """Translation of ``text`` in the calling module's context: the text itself."""
    return text


def getContext(sourceFile: str) -> str:
    """Translation context of a source file: its base name without extension, as in Slicer."""
    name = sourceFile.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0]


def make_module() -> types.ModuleType:
    module = types.ModuleType("slicer.i18n", __doc__)
    module.translate = translate
    module.tr = tr
    module.getContext = getContext
    sys.modules["slicer.i18n"] = module
    return module
