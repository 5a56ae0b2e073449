"""The cohort report for readers: a Jinja2 template, a small stylesheet and matplotlib figures.

The first page gives the trial's answer in words and numbers; then Table 1 (patient
characteristics), one section per secondary endpoint (one figure, one compact table with
human headers and units, long tables as CSV links or folded ``<details>``), links to a page
per patient, the downloads and the provenance (every input file with its SHA-256). Pages are
self-contained HTML (figures embedded as PNG data URIs) that print cleanly from a browser.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def format_p(p: float) -> str:
    """A p-value as a reader expects it: ``p = 0.022``, ``p < 0.001``."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p n/a"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def format_estimate(value: float, low: float, high: float, p: float | None = None, digits: int = 2,
                    unit: str = "") -> str:
    """``"1.16 (95 % CI 1.03-1.31), p = 0.022"``; the unit, if any, follows the value."""
    suffix = f" {unit}" if unit else ""

    def number(x):
        return f"{x:.{digits}f}".replace("-", "−")

    text = f"{number(value)}{suffix} (95 % CI {number(low)} to {number(high)})" if min(low, high) < 0 else \
        f"{number(value)}{suffix} (95 % CI {number(low)}-{number(high)})"
    return text if p is None else f"{text}, {format_p(p)}"


@dataclass
class Table:
    """A compact table: human headers (with units) and cells already formatted as text."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, headers: dict[str, str], caption: str = "",
                   digits: dict[str, int] | None = None) -> Table:
        """Keep and rename the ``headers`` columns of ``frame``; floats with ``digits`` decimals (default 2)."""
        digits = digits or {}
        rows = []
        for record in frame[list(headers)].itertuples(index=False, name=None):
            cells = []
            for column, value in zip(headers, record, strict=True):
                if isinstance(value, float):
                    cells.append("n/a" if math.isnan(value) else f"{value:.{digits.get(column, 2)}f}")
                else:
                    cells.append(str(value))
            rows.append(cells)
        return cls(list(headers.values()), rows, caption)


@dataclass
class Section:
    """One endpoint: a lead sentence, one figure, one compact table, folded details and CSV links."""

    anchor: str
    title: str
    lead: str = ""
    figure: str | None = None  # data URI
    figure_alt: str = ""
    table: Table | None = None
    notes: list[str] = field(default_factory=list)
    details: list[tuple[str, Table]] = field(default_factory=list)
    downloads: list[tuple[str, str]] = field(default_factory=list)
    exploratory: bool = False


def png_data_uri(path: str | Path) -> str:
    """A PNG file as a ``data:image/png;base64`` URI (the report stays one self-contained file)."""
    data = Path(path).read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError(f"figure is not a PNG file: {path}")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _environment():
    from jinja2 import Environment, PackageLoader

    # Every template is HTML (*.html.j2): patient ids, captions and table cells come from data and are escaped.
    return Environment(loader=PackageLoader("luprrt.cohort", "templates"), autoescape=True,
                       trim_blocks=True, lstrip_blocks=True)


def stylesheet() -> str:
    """The report's stylesheet (inlined in every page)."""
    from importlib import resources

    return resources.files("luprrt.cohort").joinpath("templates", "report.css").read_text(encoding="utf-8")


def render_page(template: str, **context) -> str:
    """Render ``template`` (``report.html.j2`` or ``patient.html.j2``) with the stylesheet inlined."""
    from markupsafe import Markup

    return _environment().get_template(template).render(css=Markup(stylesheet()), **context)


def write_page(path: str | Path, template: str, overwrite: bool = False, **context) -> Path:
    """Render and write one page; refuses to replace an existing file unless ``overwrite``."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    text = render_page(template, **context)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)  # no half-written report is ever seen under the final name
    return target
