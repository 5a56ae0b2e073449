"""A self-contained HTML report of a cohort analysis.

One file, no external CSS, JavaScript or images: figures are embedded as base64 PNG data
URIs, tables are plain HTML with the unit of every numeric column in its header, and a
provenance block (:func:`luprrt.provenance.provenance_record`) says what produced it.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import output_exists
from ..provenance import provenance_record
from .units import column_unit

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Identifier and label columns: they name a row and have no unit.
LABEL_COLUMNS = frozenset({"patient_id", "lesion_id", "cycle", "route", "predictor", "fold", "lobe"})

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 70em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; } td.label { text-align: left; }
figure { margin: 1em 0; } figcaption, caption { font-size: 0.85em; color: #555; text-align: left; }
pre { background: #f6f6f6; padding: 0.8em; font-size: 0.8em; overflow-x: auto; }
"""


@dataclass(frozen=True)
class ReportFigure:
    """A PNG file to embed, with its caption."""

    path: str | Path
    caption: str = ""


@dataclass(frozen=True)
class ReportTable:
    """A table to render; ``units`` names the unit of columns whose name does not carry it."""

    frame: pd.DataFrame
    caption: str = ""
    units: Mapping[str, str] = field(default_factory=dict)


def _format_cell(value) -> str:
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalar -> Python scalar
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _header(column, series: pd.Series, units: Mapping[str, str], where: str) -> str:
    name = str(column)
    unit = units.get(name)
    needs_unit = (
        pd.api.types.is_numeric_dtype(series)
        and not pd.api.types.is_bool_dtype(series)
        and name not in LABEL_COLUMNS
    )
    if unit is None and needs_unit:
        unit = column_unit(name)
        if unit is None:
            raise ValueError(f"{where}: numeric column {name!r} has no unit; name it with a unit suffix "
                             f"(e.g. _gy, _bq_per_ml, _pct) or pass ReportTable(units={{{name!r}: ...}})")
    text = html.escape(name)
    return f"{text} [{html.escape(unit)}]" if unit else text


def _table_html(table: ReportTable, where: str) -> str:
    frame = table.frame
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{where}: a table must be a pandas DataFrame, got {type(frame).__name__}")
    headers = [_header(c, frame[c], table.units, where) for c in frame.columns]
    labels = [not pd.api.types.is_numeric_dtype(frame[c]) or str(c) in LABEL_COLUMNS for c in frame.columns]
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = []
    for row in frame.itertuples(index=False, name=None):
        cells = "".join(
            f'<td class="label">{_format_cell(v)}</td>' if is_label else f"<td>{_format_cell(v)}</td>"
            for v, is_label in zip(row, labels, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure_html(figure: ReportFigure, where: str) -> str:
    source = Path(figure.path)
    if not source.is_file():
        raise FileNotFoundError(f"{where}: figure file not found: {source}")
    data = source.read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError(f"{where}: figure is not a PNG file: {source}")
    encoded = base64.b64encode(data).decode("ascii")
    alt = html.escape(figure.caption or source.name, quote=True)
    caption = f"<figcaption>{html.escape(figure.caption)}</figcaption>" if figure.caption else ""
    return f'<figure><img src="data:image/png;base64,{encoded}" alt="{alt}">{caption}</figure>'


def _item_html(item, where: str) -> str:
    if isinstance(item, str):
        return f"<p>{html.escape(item)}</p>"
    if isinstance(item, ReportFigure):
        return _figure_html(item, where)
    if isinstance(item, Path):
        return _figure_html(ReportFigure(item), where)
    if isinstance(item, ReportTable):
        return _table_html(item, where)
    if isinstance(item, pd.DataFrame):
        return _table_html(ReportTable(item), where)
    if hasattr(item, "to_frame"):
        return _table_html(ReportTable(item.to_frame(), getattr(item, "method", "")), where)
    raise ValueError(f"{where}: cannot report an item of type {type(item).__name__}; use text, a DataFrame, "
                     "ReportTable, ReportFigure or a result with to_frame()")


def render_html_report(sections: Mapping[str, object], title: str = "LuPRRT cohort analysis",
                       provenance: dict | None = None) -> str:
    """Render the report as an HTML string (see :func:`write_html_report`)."""
    if not sections:
        raise ValueError("the report has no sections")
    record = provenance if provenance is not None else provenance_record(
        parameters={"report_title": title, "sections": list(map(str, sections))}
    )
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for heading, content in sections.items():
        items = content if isinstance(content, list | tuple) else [content]
        where = f"section {heading!r}"
        parts.append(f"<section><h2>{html.escape(str(heading))}</h2>")
        parts.extend(_item_html(item, where) for item in items)
        parts.append("</section>")
    provenance_json = json.dumps(record, indent=2, sort_keys=True, default=str)
    parts.append('<section id="provenance"><h2>Provenance</h2>'
                 f"<pre>{html.escape(provenance_json, quote=False)}</pre></section>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body>\n</html>\n"
    )


def write_html_report(
    sections: Mapping[str, object],
    path: str | Path,
    title: str = "LuPRRT cohort analysis",
    provenance: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a self-contained HTML report of cohort results.

    Parameters
    ----------
    sections : mapping of heading -> item or list of items
        Items are text (``str``), tables (``pandas.DataFrame``, :class:`ReportTable`, or a
        result object with ``to_frame()`` such as ``PairedIaIvResult`` or ``EffectTable``)
        and figures (:class:`ReportFigure` or ``pathlib.Path`` of a PNG). Numeric columns
        must carry their unit (name suffix or ``ReportTable.units``); it is shown in the header.
    path : str or Path
        Output ``.html`` file; its folder must exist.
    title : str
        Title of the page and its first heading.
    provenance : dict, optional
        Record from :func:`luprrt.provenance.provenance_record`; one is made if omitted.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    target = Path(path)
    if target.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"report path must end in .html: {target}")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"folder of the report does not exist: {target.parent}")
    if target.exists() and not overwrite:
        raise output_exists(target)
    document = render_html_report(sections, title, provenance)
    target.write_text(document, encoding="utf-8")
    return target
