"""Atomic outputs: a run writes into a staging folder beside its output and moves the finished set in place.

A crash, a full disk or Ctrl-C therefore leaves the previous outputs or none, never a
half-written table next to complete ones. Existing outputs are replaced only when the
caller allows it, and never when the file is also one of the run's inputs (same resolved
path, or the same file under another name: same device and inode).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from .errors import option, output_exists

__all__ = ["StagedFile", "StagedFolder", "StagedOutputs", "input_identities", "remove_stale_staging"]

log = logging.getLogger(__name__)

_STAGING_TAG = ".luprrt-partial-"


def input_identities(inputs: Iterable[str | Path | None]) -> tuple[set[Path], set[tuple[int, int]]]:
    """Resolved paths and (device, inode) of every input file (folders are walked)."""
    paths: set[Path] = set()
    inodes: set[tuple[int, int]] = set()
    for item in inputs:
        if item is None:
            continue
        item = Path(item)
        files = [p for p in item.rglob("*") if p.is_file()] if item.is_dir() else [item]
        for file in files:
            with contextlib.suppress(OSError):
                status = file.stat()
                inodes.add((status.st_dev, status.st_ino))
            paths.add(file.resolve())
    return paths, inodes


def _is_input(target: Path, identities: tuple[set[Path], set[tuple[int, int]]]) -> bool:
    paths, inodes = identities
    if target.resolve() in paths:
        return True
    try:
        status = target.stat()
    except OSError:
        return False
    return (status.st_dev, status.st_ino) in inodes


def _refuse(targets: list[Path], overwrite: bool, identities) -> None:
    clashing = [t for t in targets if _is_input(t, identities)]
    if clashing:
        names = ", ".join(str(t) for t in clashing)
        raise ValueError(f"{names}: the output would replace an input of this run; choose another "
                         f"{_out_word()}")
    existing = [t for t in targets if t.exists() or t.is_symlink()]
    if existing and not overwrite:
        raise output_exists(*existing)


def _out_word(parameter: str = "out_dir") -> str:
    spelling = option(parameter)
    return spelling.rstrip("=") if spelling else "output"


def remove_stale_staging(parent: Path) -> None:
    """Remove staging folders that runs no longer alive left behind in ``parent``."""
    if not parent.is_dir():
        return
    for entry in parent.glob(f".*{_STAGING_TAG}*"):
        pid_text = entry.name.rsplit(_STAGING_TAG, 1)[1].split("-", 1)[0]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            log.info("removing %s left by an interrupted run", entry)
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()


def staging_owners(target: str | Path) -> list[int]:
    """PIDs of the live processes building ``target`` now (their staging folders beside it), sorted."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    owners = set()
    for entry in target.parent.glob(f".{glob.escape(target.name)}{_STAGING_TAG}*"):
        pid_text = entry.name.rsplit(_STAGING_TAG, 1)[1].split("-", 1)[0]
        if pid_text.isdigit() and _alive(int(pid_text)):
            owners.add(int(pid_text))
    return sorted(owners)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _staging_name(target: Path) -> Path:
    return target.parent / f".{target.name}{_STAGING_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _fsync_tree(folder: Path) -> None:
    """Flush the staged files to disk, so that a crash after the move cannot leave empty files."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


class StagedOutputs:
    """The output files of one run in ``out_dir``, written into a staging folder first.

    Use as a context manager: write every output to :meth:`path` (names relative to
    ``out_dir``, sub-folders allowed), then :meth:`commit`. Leaving the block without
    committing (an error, Ctrl-C) removes the staging folder and leaves ``out_dir`` as it was.

    Parameters
    ----------
    out_dir : path
        The output folder (created at commit when missing).
    names : iterable of str
        Output names known before the run; they are checked at once, so a refusal costs nothing.
        Names added later through :meth:`path` are checked at commit.
    overwrite : bool
        Replace existing outputs of these names (never a file that is also an input).
    inputs : iterable of paths
        The run's input files or folders.
    """

    def __init__(self, out_dir: str | Path, names: Iterable[str] = (), *, overwrite: bool = False,
                 inputs: Iterable[str | Path | None] = ()):
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise NotADirectoryError(f"output folder {self.out_dir} is a file; choose a folder as "
                                     f"{_out_word()}")
        self.overwrite = overwrite
        self._identities = input_identities(inputs)
        self._names: list[str] = list(dict.fromkeys(names))
        _refuse([self.out_dir / n for n in self._names], overwrite, self._identities)
        self.staging: Path | None = None

    def __enter__(self) -> StagedOutputs:
        remove_stale_staging(self.out_dir.parent)
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.staging = _staging_name(self.out_dir)
        self.staging.mkdir()
        return self

    def path(self, name: str) -> Path:
        """Where to write output ``name`` now (inside the staging folder)."""
        if self.staging is None:
            raise RuntimeError("StagedOutputs.path() is used inside its with-block")
        if name not in self._names:
            self._names.append(name)
        target = self.staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def commit(self) -> list[Path]:
        """Move every staged output into ``out_dir``; returns their final paths (in the order named)."""
        staged = [n for n in self._names if (self.staging / n).exists()]
        targets = [self.out_dir / n for n in staged]
        _refuse(targets, self.overwrite, self._identities)
        _fsync_tree(self.staging)
        if not self.out_dir.exists():
            # A new folder: one rename publishes the whole set at once.
            os.replace(self.staging, self.out_dir)
        else:
            for name, target in zip(staged, targets, strict=True):
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.staging / name, target)
        self._cleanup()
        return targets

    def _cleanup(self) -> None:
        if self.staging is not None and self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)
        self.staging = None

    def __exit__(self, *exc_info) -> None:
        self._cleanup()


class StagedFile:
    """One output file written beside its target and moved in place at :meth:`commit` (see StagedOutputs)."""

    def __init__(self, target: str | Path, *, overwrite: bool = False, inputs: Iterable[str | Path | None] = ()):
        self.target = Path(target)
        if self.target.is_dir():
            raise IsADirectoryError(f"{self.target} is a folder; give a file name as {_out_word('out_file')}")
        self._identities = input_identities(inputs)
        self.overwrite = overwrite
        _refuse([self.target], overwrite, self._identities)
        self.path: Path | None = None

    def __enter__(self) -> StagedFile:
        remove_stale_staging(self.target.parent)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.path = _staging_name(self.target)
        return self

    def commit(self) -> Path:
        """Move the written file onto the target."""
        _refuse([self.target], self.overwrite, self._identities)
        with open(self.path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(self.path, self.target)
        self.path = None
        return self.target

    def __exit__(self, *exc_info) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.path = None


class StagedFolder:
    """A whole output folder built beside ``target`` and put in its place at :meth:`commit`.

    Unlike :class:`StagedOutputs`, the folder is replaced as a unit (``overwrite`` allowing),
    so no file of an earlier version survives next to the new ones. The old folder is first
    renamed to a staging name (removed afterwards, or by the next run after a crash).
    """

    def __init__(self, target: str | Path, *, overwrite: bool = False):
        self.target = Path(target)
        if self.target.exists() and not overwrite:
            raise output_exists(self.target)
        self.overwrite = overwrite
        self.path: Path | None = None

    def __enter__(self) -> StagedFolder:
        remove_stale_staging(self.target.parent)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.path = _staging_name(self.target)
        self.path.mkdir()
        return self

    def commit(self) -> Path:
        """Publish the staged folder as ``target``."""
        _fsync_tree(self.path)
        old = None
        if self.target.exists():
            if not self.overwrite:
                raise output_exists(self.target)
            old = _staging_name(self.target)
            os.replace(self.target, old)
        os.replace(self.path, self.target)
        self.path = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target

    def __exit__(self, *exc_info) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None
