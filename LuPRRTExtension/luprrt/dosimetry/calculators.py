"""Organ and lesion time-integrated activities in the inputs of organ-level dose calculators.

Sites cross-check image-based dosimetry with organ-level calculators built on reference
phantoms: OLINDA/EXM (Stabin et al., J Nucl Med 2005;46:1023; version 2 with the ICRP 89
phantoms) and MIRDcalc (Kesner et al., J Nucl Med 2023;64:1117). Both take, per source
region, the time-integrated activity coefficient (TIAC, also called residence time or number
of disintegrations per unit administered activity):

    TIAC (h) = TIA (MBq h) / administered activity (MBq).

:func:`calculator_kinetics` turns a cycle's dose-table rows into these values under the
calculators' source-region names: kidneys (left + right summed), liver (whole liver, or
the non-tumour liver of both lobes plus the lesions when no whole-liver row exists), spleen,
red marrow, and each lesion as a sphere of its volume (MIRDcalc's sphere model, OLINDA's
sphere model). The rest of the body is outside the SPECT field of view: its TIAC (total
body minus the organs) is not measured by LuPRRT and must be entered at the calculator
(e.g. from whole-body planar imaging or urine collection).

Files:

* :func:`write_mirdcalc_csv`: one row per source region, columns ``source_region``
  (MIRDcalc's name), ``luprrt_region``, ``tia_mbq_h``, ``tiac_h`` (the value MIRDcalc's
  source table takes), ``volume_ml`` (lesions: the sphere volume to enter).
* :func:`write_olinda_case`: an OLINDA/EXM 2 case file. OLINDA stores a case as text in
  bracketed blocks (``[BEGIN KINETIC DATA]`` ... ``[END KINETIC DATA]``, one
  ``organ|value`` line per source organ of the phantom, value in MBq-h/MBq). LuPRRT fills the
  kinetic block of a case file the site saved from its own OLINDA/EXM with the phantom and
  nuclide it uses: the phantom, its masses and every other setting stay as the site set
  them; organs LuPRRT did not measure keep the template's value.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

# LuPRRT dose-table roles -> the source-region names of the calculators (OLINDA/EXM 2 and
# MIRDcalc use the same words for these organs).
CALCULATOR_ORGANS = {"kidney": "Kidneys", "liver": "Liver", "spleen": "Spleen", "marrow": "Red Marrow"}
KINETICS_COLUMNS = ("source_region", "luprrt_region", "tia_mbq_h", "tiac_h", "volume_ml")


def calculator_kinetics(dose_rows: Iterable[Mapping], cycle: int, administered_activity_mbq: float, *,
                        method: str = "local_deposition", lesion_volumes_ml: Mapping[str, float] | None = None
                        ) -> list[dict]:
    """TIA and TIAC per calculator source region for one cycle.

    Parameters
    ----------
    dose_rows : rows of the dose table (columns ``cycle, region, role, side, lesion_id, method,
        tia_mbq_h``); one TIA per region is taken from the rows of ``method``.
    administered_activity_mbq : the cycle's administered activity (MBq)
    lesion_volumes_ml : lesion id -> volume (mL), for the sphere models

    Returns
    -------
    list of dict with :data:`KINETICS_COLUMNS`
    """
    if not (administered_activity_mbq and administered_activity_mbq > 0):
        raise ValueError(f"administered activity of cycle {cycle} must be positive, got {administered_activity_mbq}")
    rows = [r for r in dose_rows if int(r["cycle"]) == cycle and r["method"] == method]
    if not rows:
        raise ValueError(f"no dose rows of cycle {cycle} with method {method!r}; the TIAs come from them")
    lesion_volumes_ml = lesion_volumes_ml or {}
    sums: dict[str, list] = {}

    def add(name: str, region: str, tia: float) -> None:
        entry = sums.setdefault(name, [[], 0.0])
        entry[0].append(region)
        entry[1] += tia

    has_liver = any(r["role"] == "liver" for r in rows)
    for row in rows:
        tia = float(row["tia_mbq_h"])
        if not math.isfinite(tia):
            raise ValueError(f"cycle {cycle}: region {row['region']!r} has no finite TIA ({row['tia_mbq_h']})")
        role = row["role"]
        if role in CALCULATOR_ORGANS:
            add(CALCULATOR_ORGANS[role], row["region"], tia)
        elif not has_liver and role in ("non-tumour", "lesion"):
            add("Liver", row["region"], tia)
        if role == "lesion":
            add(f"Tumor {row['lesion_id'] or row['region']}", row["region"], tia)
    result = []
    for name, (regions, tia) in sums.items():
        lesion_id = name.removeprefix("Tumor ") if name.startswith("Tumor ") else None
        volume = lesion_volumes_ml.get(lesion_id) if lesion_id else None
        result.append({"source_region": name, "luprrt_region": "+".join(regions), "tia_mbq_h": tia,
                       "tiac_h": tia / administered_activity_mbq,
                       "volume_ml": float(volume) if volume is not None else None})
    return result


def write_mirdcalc_csv(kinetics: list[dict], path: str | Path, *, overwrite: bool = False) -> Path:
    """Write :func:`calculator_kinetics` rows as the MIRDcalc source-region table (CSV).

    Parameters
    ----------
    kinetics : list of dict
        Rows of :func:`calculator_kinetics` (columns :data:`KINETICS_COLUMNS`; TIAC in h, volume in mL).
    path : str or Path
        Output CSV file, written atomically.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    path = _output(path, overwrite)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=KINETICS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in kinetics:
        writer.writerow({k: ("" if row[k] is None else (repr(row[k]) if isinstance(row[k], float) else row[k]))
                         for k in KINETICS_COLUMNS})
    _atomic_text(path, buffer.getvalue())
    return path


_KINETIC_BLOCK = re.compile(r"(\[BEGIN KINETIC DATA\]\r?\n)(.*?)(\[END KINETIC DATA\])", re.DOTALL)


def write_olinda_case(kinetics: list[dict], template: str | Path, path: str | Path, *,
                      overwrite: bool = False) -> Path:
    """Fill the kinetic block of an OLINDA/EXM 2 case file (``template``) with the organ TIACs.

    Organs are matched by OLINDA's names (``Kidneys``, ``Liver``, ``Spleen``, ``Red Marrow``);
    an organ LuPRRT measured that the template's phantom lacks is an error, as is a template
    without exactly one kinetic block. Lesions are not written (OLINDA doses them with its
    separate sphere model: use the ``volume_ml`` and ``tiac_h`` of the MIRDcalc table).

    Parameters
    ----------
    kinetics : list of dict
        Rows of :func:`calculator_kinetics` (TIAC in h).
    template : str or Path
        An OLINDA/EXM 2 case file saved with the phantom to use.
    path : str or Path
        Output case file, written atomically.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    FileNotFoundError
        The template is missing.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    ValueError
        The template has not exactly one kinetic block, or lacks an organ LuPRRT measured.
    """
    template = Path(template)
    if not template.is_file():
        raise FileNotFoundError(f"OLINDA/EXM case file template not found: {template}")
    text = template.read_text(encoding="utf-8", errors="strict")
    blocks = _KINETIC_BLOCK.findall(text)
    if len(blocks) != 1:
        raise ValueError(f"{template}: expected one [BEGIN KINETIC DATA] ... [END KINETIC DATA] block, found "
                         f"{len(blocks)}; save a case from OLINDA/EXM with the phantom you use and give that file")
    values = {row["source_region"]: row["tiac_h"] for row in kinetics if not row["source_region"].startswith("Tumor ")}
    lines = blocks[0][1].splitlines()
    organs = [line.split("|", 1)[0] for line in lines if "|" in line]
    missing = sorted(set(values) - set(organs))
    if missing:
        raise ValueError(f"{template}: the phantom has no source organ {missing}; its organs are {organs}")
    newline = "\r\n" if "\r\n" in blocks[0][0] else "\n"
    filled = [f"{line.split('|', 1)[0]}|{values[line.split('|', 1)[0]]!r}"
              if "|" in line and line.split("|", 1)[0] in values else line for line in lines]
    body = newline.join(filled) + newline
    path = _output(path, overwrite)
    _atomic_text(path, _KINETIC_BLOCK.sub(lambda m: m.group(1) + body + m.group(3), text, count=1))
    return path


def _output(path: str | Path, overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite (--overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _atomic_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_text(text, encoding="utf-8", newline="")
    temporary.replace(path)
