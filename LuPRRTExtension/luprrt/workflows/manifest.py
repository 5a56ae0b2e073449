"""A patient folder's ``manifest.json``: read once, checked before any image is opened.

The layout (written by :func:`luprrt.phantom.write_patient`, or by a site's own export) is a
JSON object with ``patient_id``, ``administrations`` (``cycle``, ``activity_mbq`` in MBq,
``route``, ``side``) and ``sessions``: visits with a ``kind`` ("cycle", "baseline",
"followup"), a ``segmentation`` and, for treatment cycles, ``cycle`` and a ``spect`` list
whose entries give ``file`` (relative to the folder) and ``hours_post_injection`` (h).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["read_manifest"]


def read_manifest(patient_folder: str | Path) -> dict:
    """The patient's ``manifest.json``, with a one-line error naming the field when it is unusable.

    Raises
    ------
    FileNotFoundError
        No such folder, or no ``manifest.json`` in it.
    ValueError
        Not JSON, not an object with ``patient_id`` and ``sessions``, or a value of the wrong kind:
        a cycle that is not an integer, an activity that is not a positive number of MBq, a SPECT
        entry without ``file`` or with ``hours_post_injection`` that is not a number of hours >= 0.
    """
    folder = Path(patient_folder)
    path = folder / "manifest.json"
    if not folder.is_dir():
        raise FileNotFoundError(f"patient folder not found: {folder}")
    if not path.is_file():
        raise FileNotFoundError(f"no manifest.json in patient folder {folder}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable JSON manifest ({error}); repair or rewrite it") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: a LuPRRT manifest is a JSON object with patient_id and sessions")
    for key in ("patient_id", "sessions"):
        if key not in manifest:
            raise ValueError(f"{path}: missing key {key!r}")
    if not isinstance(manifest["sessions"], list) or not all(isinstance(v, dict) for v in manifest["sessions"]):
        raise ValueError(f"{path}: 'sessions' must be a list of visits (objects)")
    for number, administration in enumerate(manifest.get("administrations") or [], start=1):
        where = f"{path}: administration {number}"
        if not isinstance(administration, dict):
            raise ValueError(f"{where} is not an object with cycle and activity_mbq")
        _check_cycle(administration, where)
        activity = administration.get("activity_mbq")
        if activity is not None and not (_is_number(activity) and activity > 0):
            raise ValueError(f"{where}: activity_mbq {activity!r} is not a positive number of MBq; write it "
                             "as e.g. 7400.0")
    for session in manifest["sessions"]:
        where = f"{path}: session {session.get('name', '?')!r}"
        if session.get("kind") == "cycle":
            _check_cycle(session, where)
        _check_spect_entries(session.get("spect"), where)
    return manifest


def _check_cycle(item: dict, where: str) -> None:
    cycle = item.get("cycle")
    if isinstance(cycle, bool) or (not isinstance(cycle, int) and not (isinstance(cycle, str) and cycle.isdigit())):
        raise ValueError(f"{where}: cycle {cycle!r} is not a treatment cycle number; write it as e.g. 1")


def _check_spect_entries(entries, where: str) -> None:
    if entries is None:
        return
    if not isinstance(entries, list):
        raise ValueError(f"{where}: 'spect' must be a list of scans (objects with file and hours_post_injection)")
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not entry["file"].strip():
            raise ValueError(f"{where}: SPECT {number} has no 'file' (the image path relative to the patient "
                             "folder)")
        hours = entry.get("hours_post_injection")
        if hours is not None and not (_is_number(hours) and hours >= 0):
            raise ValueError(f"{where}: SPECT {number} ({entry['file']}) has hours_post_injection {hours!r}; "
                             "give the scan time after injection as a number of hours >= 0, e.g. 24.0")


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
