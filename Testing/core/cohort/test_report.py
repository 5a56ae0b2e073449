"""Cohort figures (PNG) and the self-contained HTML report."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from luprrt import __version__
from luprrt.cohort import paired_ia_iv, uptake_summary_by_cycle
from luprrt.cohort.figures import forest_plot, paired_ia_iv_figure, roc_figure, spider_plot, waterfall_plot
from luprrt.cohort.models import EffectTable, roc_curve_points
from luprrt.cohort.report import ReportFigure, ReportTable, render_html_report, write_html_report
from luprrt.cohort.units import column_unit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    """(width, height) in pixels from the PNG IHDR chunk."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def lesion_table() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    patients = np.repeat(np.arange(8), 4)
    route = np.tile(["IA", "IA", "IV", "IV"], 8)
    log_tn = np.log(12.0) + rng.normal(0, 0.3, 8)[patients] + 0.25 * (route == "IA") + rng.normal(0, 0.2, 32)
    return pd.DataFrame(
        {
            "patient_id": [f"P{p}" for p in patients],
            "cycle": 1,
            "route": route,
            "lesion_id": [f"L{i % 4}" for i in range(32)],
            "tn_mean": np.exp(log_tn),
            "kidney_uptake_pct_ia": np.repeat(rng.uniform(1.0, 3.0, 8), 4),
        }
    )


@pytest.fixture(scope="module")
def effects() -> EffectTable:
    table = pd.DataFrame(
        {
            "predictor": ["tumour_dose_gy", "fdg_suvmax"],
            "effect_per": ["1 SD = 9.1 Gy", "1 SD = 3 g/mL"],
            "coef_log_odds": [0.9, -0.7],
            "se_log_odds": [0.2, 0.2],
            "odds_ratio": np.exp([0.9, -0.7]),
            "ci_low_or": np.exp([0.5, -1.1]),
            "ci_high_or": np.exp([1.3, -0.3]),
            "p_value": [1e-5, 5e-4],
        }
    )
    return EffectTable(table, "GEE logistic", 100, 20)


def test_column_units_from_names():
    assert column_unit("mean_tumour_dose_gy") == "Gy"
    assert column_unit("kidney_concentration_bq_per_ml") == "Bq/mL"
    assert column_unit("q1_kidney_uptake_pct_ia") == "%IA"
    assert column_unit("tia_mbq_h") == "MBq h"
    assert column_unit("time_since_baseline_h") == "h"
    assert column_unit("max_fdg_suvmax") == "g/mL"
    assert column_unit("adc_mm2_per_s") == "mm²/s"
    assert column_unit("ratio_ia_iv") == column_unit("p_value") == column_unit("ia_gmean_tn_mean") == "1"
    assert column_unit("n_patients") == "count"
    assert column_unit("patient_id") is None


def test_figures_write_png_of_the_requested_size_and_refuse_overwrite(tmp_path, lesion_table, effects):
    paired = paired_ia_iv(lesion_table)
    target = paired_ia_iv_figure(paired, tmp_path / "paired.png")
    assert png_size(target) == (480, 600)  # 4 x 5 in at 120 dpi
    with pytest.raises(FileExistsError, match=r"paired\.png"):
        paired_ia_iv_figure(paired, target)
    before = target.stat().st_mtime_ns
    paired_ia_iv_figure(paired, target, overwrite=True)
    assert target.stat().st_mtime_ns >= before and png_size(target) == (480, 600)

    forest = forest_plot(effects, tmp_path / "forest.png")
    assert png_size(forest) == (720, round(120 * (1.2 + 0.45 * 2)))
    rng = np.random.default_rng(0)
    y = rng.random(40) < 0.5
    roc = roc_figure({"dose": roc_curve_points(y, rng.normal(size=40) + y)}, tmp_path / "roc.png")
    assert png_size(roc) == (600, 600)

    follow_up = pd.DataFrame(
        {
            "patient_id": ["A"] * 6 + ["B"] * 3,
            "lesion_id": ["L1"] * 3 + ["L2"] * 3 + ["L1"] * 3,
            "time_since_baseline_h": [0.0, 2016.0, 4032.0] * 3,  # 0, 12, 24 weeks
            "diameter_change_pct": [0, -20, -40, 0, 5, 25, 0, -10, -12],
        }
    )
    assert png_size(spider_plot(follow_up, tmp_path / "spider.png")) == (780, 540)
    best = pd.DataFrame({"patient_id": ["A", "B", "C"], "best_sum_diameters_change_pct": [-45.0, 10.0, 30.0]})
    assert png_size(waterfall_plot(best, tmp_path / "waterfall.png")) == (600, 540)


def test_figures_reject_bad_targets_and_tables(tmp_path, effects):
    with pytest.raises(ValueError, match=r"must end in \.png"):
        forest_plot(effects, tmp_path / "forest.jpg")
    with pytest.raises(FileNotFoundError, match="missing"):
        forest_plot(effects, tmp_path / "missing" / "forest.png")
    with pytest.raises(ValueError, match="one row per patient"):
        waterfall_plot(pd.DataFrame({"patient_id": ["A", "A"], "best_sum_diameters_change_pct": [1.0, 2.0]}),
                       tmp_path / "w.png")
    with pytest.raises(ValueError, match="lacks column"):
        spider_plot(pd.DataFrame({"patient_id": ["A"]}), tmp_path / "s.png")


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
