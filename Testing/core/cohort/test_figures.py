"""Cohort figures: what each PNG shows, read from the matplotlib objects that drew it, not from pixels.

Every figure function draws on a ``matplotlib.figure.Figure`` and saves it; the tests record the
figure at ``savefig`` and check its axes: labels with their units, scales, tick labels, and the
plotted data against values computed here from the input tables.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from scipy import stats

from luprrt.cohort import paired_ia_iv
from luprrt.cohort.figures import forest_plot, paired_ia_iv_figure, roc_figure, spider_plot, waterfall_plot
from luprrt.cohort.models import RocCurve

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RED, BLUE, GREY = "#c0392b", "#2471a3", "#7f8c8d"  # increase, decrease, neither


def png_size(path) -> tuple[int, int]:
    """(width, height) in pixels from the PNG IHDR chunk."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The figures saved during the test, in order (savefig still writes the file)."""
    from matplotlib.figure import Figure

    figures = []
    save = Figure.savefig

    def recording_savefig(self, *args, **kwargs):
        figures.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_savefig)
    return figures


def only_axes(figure):
    (axes,) = figure.get_axes()
    return axes


def test_paired_figure_joins_each_patients_lobes_on_a_log_axis(tmp_path, drawn, lesion_table):
    result = paired_ia_iv(lesion_table)
    paired_ia_iv_figure(result, tmp_path / "paired.png")
    axes = only_axes(drawn[0])

    # Per patient: geometric mean of the lesion T/N of each lobe.
    logs = lesion_table.assign(log_tn=np.log(lesion_table["tn_mean"]))
    lobes = np.exp(logs.groupby(["patient_id", "route"])["log_tn"].mean().unstack("route"))
    *patients, mean = axes.get_lines()
    assert len(patients) == 8
    expected = {(round(iv, 9), round(ia, 9)) for iv, ia in zip(lobes["IV"], lobes["IA"], strict=True)}
    assert {tuple(np.round(line.get_ydata(), 9)) for line in patients} == expected
    for line in patients:
        iv, ia = line.get_ydata()
        assert list(line.get_xdata()) == [0, 1] and line.get_color() == (RED if ia > iv else BLUE)
    np.testing.assert_allclose(mean.get_ydata(), np.exp(np.log(lobes[["IV", "IA"]]).mean()), rtol=1e-12)
    assert mean.get_label() == "geometric mean"

    assert axes.get_yscale() == "log"
    assert [t.get_text() for t in axes.get_xticklabels()] == ["IV lobe", "IA lobe"]
    assert axes.get_ylabel() == "T/N per patient (geometric mean of its lesions)"
    ticks = [t for t in axes.get_yticklabels() if t.get_text()]
    assert len(ticks) >= 3
    for tick in ticks:  # plain numbers such as 8 or 20, not powers of ten
        assert re.fullmatch(r"\d+(\.\d+)?", tick.get_text()) and float(tick.get_text()) == pytest.approx(
            tick.get_position()[1])
    # Title: the geometric-mean ratio with its t interval over the 8 patients' log ratios.
    log_ratio = np.log(lobes["IA"] / lobes["IV"]).to_numpy()
    half_width = stats.t.ppf(0.975, 7) * log_ratio.std(ddof=1) / np.sqrt(8)
    ratio, low, high = np.exp([log_ratio.mean(), log_ratio.mean() - half_width, log_ratio.mean() + half_width])
    assert axes.get_title() == f"Cycle 1: IA/IV {ratio:.2f} (95 % CI {low:.2f}-{high:.2f}), n = 8"


def test_forest_plot_shows_odds_ratios_with_intervals_on_a_log_axis(tmp_path, drawn, effects):
    forest_plot(effects, tmp_path / "forest.png")
    axes = only_axes(drawn[0])
    assert axes.get_xscale() == "log"
    assert axes.get_xlabel() == "odds ratio of response (log scale)"
    assert axes.get_title() == "GEE logistic"
    labels = {tick.get_position()[1]: tick.get_text() for tick in axes.get_yticklabels()}
    assert labels == {1: "tumour_dose_gy (1 SD = 9.1 Gy)", 0: "fdg_suvmax (1 SD = 3 g/mL)"}  # first on top
    (bars,) = axes.containers
    points, _, (segments,) = bars
    np.testing.assert_allclose(points.get_xdata(), np.exp([0.9, -0.7]), rtol=1e-12)
    np.testing.assert_allclose(points.get_ydata(), [1, 0])
    np.testing.assert_allclose([[s[0][0], s[1][0]] for s in segments.get_segments()],
                               np.exp([[0.5, 1.3], [-1.1, -0.3]]), rtol=1e-12)
    assert any(list(line.get_xdata()) == [1.0, 1.0] for line in axes.get_lines())  # no-effect line at OR = 1


def test_roc_figure_draws_each_curve_and_names_its_auc(tmp_path, drawn):
    # Hand-made curve through (0.25, 0.75): trapezoids 0.25 * 0.375 + 0.75 * 0.875 = 0.75.
    curve = RocCurve(np.array([0.0, 0.25, 1.0]), np.array([0.0, 0.75, 1.0]), np.array([np.inf, 2.0, 1.0]), 0.75)
    roc_figure({"tumour dose": curve}, tmp_path / "roc.png", title="Response by dose")
    axes = only_axes(drawn[0])
    assert axes.get_xlabel() == "1 - specificity (false-positive rate)"
    assert axes.get_ylabel() == "sensitivity (true-positive rate)"
    assert axes.get_title() == "Response by dose"
    line, chance = axes.get_lines()
    assert (list(line.get_xdata()), list(line.get_ydata())) == ([0.0, 0.25, 1.0], [0.0, 0.75, 1.0])
    assert (list(chance.get_xdata()), list(chance.get_ydata())) == ([0, 1], [0, 1])
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["tumour dose (AUC 0.75)"]
    assert axes.get_xlim() == (0.0, 1.0)


def test_spider_plot_shows_weeks_and_percent_from_baseline(tmp_path, drawn):
    follow_up = pd.DataFrame({
        "patient_id": ["A"] * 6 + ["B"] * 3 + ["C"] * 2,
        "lesion_id": ["L1"] * 3 + ["L2"] * 3 + ["L1"] * 3 + ["L1"] * 2,
        "time_since_baseline_h": [0.0, 2016.0, 4032.0] * 3 + [1008.0, 3024.0],  # 0, 12, 24 weeks; 6, 18
        "diameter_change_pct": [0, -20, -40, 0, 5, 25, 0, -10, -12, -35, -50],
    })
    spider_plot(follow_up, tmp_path / "spider.png")
    axes = only_axes(drawn[0])
    assert axes.get_xlabel() == "time since baseline (weeks)"
    assert axes.get_ylabel() == "change of longest diameter (%)"
    *lesions, progression, response, zero = axes.get_lines()
    drawn_lines = {tuple(line.get_ydata()): (list(line.get_xdata()), line.get_color()) for line in lesions}
    assert drawn_lines == {
        (0, -20, -40): ([0, 12, 24], BLUE),  # last -40 % <= -30 %: partial response
        (0, 5, 25): ([0, 12, 24], RED),  # last +25 % >= +20 %: progression
        (0, -10, -12): ([0, 12, 24], GREY),
        (0, -35, -50): ([0, 6, 18], BLUE),  # no baseline row: the line still starts at (0 weeks, 0 %)
    }
    assert [list(line.get_ydata()) for line in (progression, response, zero)] == [[20, 20], [-30, -30], [0, 0]]
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["+20 % (PD)", "-30 % (PR)"]


def test_waterfall_plot_sorts_patients_from_worst_to_best(tmp_path, drawn):
    best = pd.DataFrame({"patient_id": ["A", "B", "C", "D"],
                         "best_sum_diameters_change_pct": [-45.0, 10.0, 30.0, -30.0]})
    waterfall_plot(best, tmp_path / "waterfall.png")
    axes = only_axes(drawn[0])
    assert axes.get_ylabel() == "best change of the sum of diameters (%)"
    assert [t.get_text() for t in axes.get_xticklabels()] == ["C", "B", "D", "A"]
    bars = axes.patches
    assert [bar.get_height() for bar in bars] == [30.0, 10.0, -30.0, -45.0]
    assert [bar.get_facecolor() for bar in bars] == [to_rgba(c) for c in (RED, GREY, BLUE, BLUE)]


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
    curve = RocCurve(np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([np.inf, 0.0]), 0.5)
    assert png_size(roc_figure({"dose": curve}, tmp_path / "roc.png")) == (600, 600)
    follow_up = pd.DataFrame({"patient_id": ["A"] * 3, "lesion_id": ["L1"] * 3,
                              "time_since_baseline_h": [0.0, 2016.0, 4032.0], "diameter_change_pct": [0, -20, -40]})
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
    with pytest.raises(ValueError, match="effects table is empty"):
        forest_plot(effects.table.iloc[:0], tmp_path / "empty.png")
    with pytest.raises(ValueError, match="no ROC curves given"):
        roc_figure({}, tmp_path / "roc.png")
    assert list(tmp_path.iterdir()) == []
