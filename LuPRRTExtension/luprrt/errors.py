"""Errors a user can fix, and how each front end names the fix.

The core raises :class:`ValueError` (bad or inconsistent input) and :class:`OSError`
(missing, unreadable or unwritable files) with messages that name the input and the fix.
The fix is often an option, and each front end spells it differently: the Python API
``injected_activity_mbq=``, the command line ``--administered-mbq CYCLE:MBQ``, a Slicer
panel its field. Messages therefore name options through :func:`option`, and a front end
says how it spells them with :func:`option_words` (the command line does so around every
sub-command).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["Interrupted", "current_option_words", "fix", "option", "option_words", "or_fix", "output_exists"]

# None: the Python API (options are keyword arguments); else the active front end's words.
_WORDS: ContextVar[Mapping[str, str] | None] = ContextVar("luprrt_option_words", default=None)


class Interrupted(KeyboardInterrupt):
    """A run stopped by the user (Ctrl-C, SIGTERM); the message says what was kept and how to resume."""


def option(parameter: str) -> str | None:
    """How the active front end spells the option that sets ``parameter``.

    The Python API (no front end active) gives ``"parameter="``; a front end gives its own
    spelling (e.g. ``"--administered-mbq CYCLE:MBQ"``), or None when it has no such option.
    """
    words = _WORDS.get()
    if words is None:
        return f"{parameter}="
    return words.get(parameter)


def fix(parameter: str, example: str = "...") -> str | None:
    """The phrase that tells the user to set ``parameter``, or None when the front end cannot.

    Python: ``"pass overwrite=True"`` (``example`` completes the keyword); a command line:
    ``"add --overwrite"`` for a switch, ``"give --administered-mbq CYCLE:MBQ"`` for an option
    with a value.
    """
    words = _WORDS.get()
    if words is None:
        return f"pass {parameter}={example}"
    spelling = words.get(parameter)
    if spelling is None:
        return None
    return f"{'give' if ' ' in spelling else 'add'} {spelling}"


def or_fix(parameter: str, example: str = "...") -> str:
    """``", or <fix>"`` to end a message's list of fixes, or ``""`` when the front end has none."""
    phrase = fix(parameter, example)
    return f", or {phrase}" if phrase else ""


def output_exists(*paths) -> FileExistsError:
    """The error for outputs that exist already (to raise); names them and how to replace them."""
    names = ", ".join(str(p) for p in paths)
    several = len(paths) > 1
    phrase = fix("overwrite", "True")
    return FileExistsError(f"output file{'s exist' if several else ' exists'}: {names}; "
                           + (f"{phrase} to replace {'them' if several else 'it'}" if phrase
                              else "choose another output"))


def current_option_words() -> Mapping[str, str] | None:
    """The active front end's words (None for the Python API), to hand on to worker processes."""
    return _WORDS.get()


@contextmanager
def option_words(words: Mapping[str, str]) -> Iterator[None]:
    """Within the block, :func:`option` and :func:`fix` spell parameters with ``words`` (a front end's)."""
    token = _WORDS.set(dict(words))
    try:
        yield
    finally:
        _WORDS.reset(token)
