"""The self-contained HTML report: figures embedded, tables with units, provenance."""

from __future__ import annotations

import base64
import re

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
