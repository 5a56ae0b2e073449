"""Where a number came from: input hashes, parameters and software version."""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

from . import __version__

# Progress callbacks across LuPRRT: progress(fraction_done in [0, 1], message).
ProgressCallback = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """A progress callback that ignores progress (the default)."""


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inputs_sha256(paths: Iterable[str | Path]) -> dict[str, str]:
    """SHA-256 of every file under the given files or folders, keyed by path."""
    hashes = {}
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        hashes.update({str(f): file_sha256(f) for f in files})
    return hashes


def creation_time() -> datetime:
    """Now (UTC), or the time in ``SOURCE_DATE_EPOCH`` (seconds since 1970) for reproducible outputs.

    SOURCE_DATE_EPOCH is the reproducible-builds convention
    (https://reproducible-builds.org/specs/source-date-epoch/): with it, two runs on the same
    inputs write byte-identical records.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), timezone.utc)
    return datetime.now(timezone.utc)


def provenance_record(inputs: dict[str, str] | None = None, parameters: dict | None = None) -> dict:
    """A JSON-serialisable record to store next to every derived table."""
    return {
        "software": "luprrt",
        "version": __version__,
        "python": platform.python_version(),
        "created_utc": creation_time().isoformat(timespec="seconds"),
        "inputs": dict(inputs or {}),
        "parameters": dict(parameters or {}),
    }
