"""The self-contained HTML report: figures embedded, tables with units, provenance."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from luprrt import __version__
from luprrt.cohort import paired_ia_iv, uptake_summary_by_cycle
from luprrt.cohort.figures import forest_plot, paired_ia_iv_figure
from luprrt.cohort.report import ReportFigure, ReportTable, render_html_report, write_html_report


def test_html_report_embeds_figures_tables_with_units_and_provenance(tmp_path, lesion_table, effects):
    paired = paired_ia_iv(lesion_table)
    figure = paired_ia_iv_figure(paired, tmp_path / "paired.png")
    forest = forest_plot(effects, tmp_path / "forest.png")
    sections = {
        "Primary endpoint": ["IA vs IV lobe T/N after cycle 1.", paired, ReportFigure(figure, "Paired T/N")],
        "Kidney uptake": uptake_summary_by_cycle(lesion_table, "kidney_uptake_pct_ia"),
        "Lesion response model": [effects, forest],
    }
    path = write_html_report(sections, tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 2
    assert base64.b64decode(images[0]) == figure.read_bytes()
    for header in ("ratio_ia_iv [1]", "ia_mean_tn_mean [1]", "n_patients [count]",
                   "mean_kidney_uptake_pct_ia [%IA]", "sd_kidney_uptake_pct_ia [%IA]", "odds_ratio [1]"):
        assert f"<th>{header}</th>" in text
    assert "<th>cycle</th>" in text and "<th>predictor</th>" in text
    assert f"{paired.ratio:.4g}" in text
    assert '"version": "' + __version__ + '"' in text
    markup = re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,", text)
    assert "<link" not in markup and "<script" not in markup and "http" not in markup  # self-contained
    with pytest.raises(FileExistsError, match=r"report\.html"):
        write_html_report(sections, path)


def test_html_report_requires_units_of_numeric_columns(tmp_path):
    table = pd.DataFrame({"lesion_id": ["L1"], "uptake": [1.5]})
    with pytest.raises(ValueError, match="'uptake' has no unit"):
        render_html_report({"Uptake": table})
    html = render_html_report({"Uptake": ReportTable(table, units={"uptake": "Bq/mL"})},
                              provenance={"software": "luprrt"})
    assert "<th>uptake [Bq/mL]</th>" in html
    with pytest.raises(ValueError, match="not a PNG"):
        fake = tmp_path / "fake.png"
        fake.write_bytes(b"GIF89a")
        render_html_report({"Figure": ReportFigure(fake)})
    with pytest.raises(ValueError, match="no sections"):
        render_html_report({})


def test_cells_read_as_text_and_bad_items_and_paths_are_named(tmp_path):
    table = pd.DataFrame({"lesion_id": ["L1", "L2", "L3"], "dose_gy": [np.float64(12.3456), np.nan, 7.0],
                          "n_lesions_count": [np.int64(3), 4, 5], "responder": [True, False, None],
                          "note": pd.Series([np.float32(0.5), "a<b", np.bool_(True)], dtype=object)})
    html = render_html_report({"Doses": ReportTable(table, caption="Cycle 1 & 2")}, provenance={"software": "luprrt"})
    rows = re.findall(r"<tr>(<td.*?)</tr>", html)
    assert rows == ['<td class="label">L1</td><td>12.35</td><td>3</td><td class="label">yes</td><td class="label">0.5</td>',
                    '<td class="label">L2</td><td>n/a</td><td>4</td><td class="label">no</td><td class="label">a&lt;b</td>',
                    '<td class="label">L3</td><td>7</td><td>5</td><td class="label">n/a</td><td class="label">yes</td>']
    assert "<caption>Cycle 1 &amp; 2</caption>" in html
    with pytest.raises(ValueError) as error:
        render_html_report({"Doses": ReportTable([[1.0]])})
    assert str(error.value) == "section 'Doses': a table must be a pandas DataFrame, got list"
    with pytest.raises(FileNotFoundError) as error:
        render_html_report({"Figure": tmp_path / "absent.png"})
    assert str(error.value) == f"section 'Figure': figure file not found: {tmp_path / 'absent.png'}"
    with pytest.raises(ValueError) as error:
        render_html_report({"Numbers": 42})
    assert str(error.value) == ("section 'Numbers': cannot report an item of type int; use text, a DataFrame, "
                                "ReportTable, ReportFigure or a result with to_frame()")
    with pytest.raises(ValueError) as error:
        write_html_report({"Doses": table}, tmp_path / "report.pdf")
    assert str(error.value) == f"report path must end in .html: {tmp_path / 'report.pdf'}"
    with pytest.raises(FileNotFoundError) as error:
        write_html_report({"Doses": table}, tmp_path / "missing" / "report.html")
    assert str(error.value) == f"folder of the report does not exist: {tmp_path / 'missing'}"
    assert list(tmp_path.iterdir()) == []
