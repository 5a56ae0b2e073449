"""The readers' report pieces: p-values and estimates as text, compact tables, PNG data URIs, atomic pages."""

from __future__ import annotations

import base64
import math

import numpy as np
import pandas as pd
import pytest

from luprrt.cohort.reader_report import Table, format_estimate, format_p, png_data_uri, stylesheet, write_page


@pytest.mark.parametrize(("p", "text"), [
    (None, "p n/a"), (math.nan, "p n/a"), (0.0004, "p < 0.001"), (0.001, "p = 0.001"), (0.0223, "p = 0.022"),
    (0.0999, "p = 0.1"), (0.1, "p = 0.10"), (0.354, "p = 0.35"), (1.0, "p = 1.00"),
])
def test_p_values_read_as_a_reader_expects(p, text):
    assert format_p(p) == text


def test_estimates_with_their_interval_unit_and_p_value():
    assert format_estimate(1.1612, 1.031, 1.309, p=0.022) == "1.16 (95 % CI 1.03-1.31), p = 0.022"
    assert format_estimate(12.0, 10.0, 14.5, digits=1, unit="Gy") == "12.0 Gy (95 % CI 10.0-14.5)"
    # An interval reaching below zero: "to" and true minus signs, not a run of hyphens.
    assert format_estimate(-0.5, -1.25, 0.25, p=0.0001) == "−0.50 (95 % CI −1.25 to 0.25), p < 0.001"


def test_table_from_a_frame_keeps_renames_and_formats_the_chosen_columns():
    frame = pd.DataFrame({"patient_id": ["P1", "P2"], "dose_gy": [12.345, np.nan], "n_lesions": [3, 4],
                          "tn_mean": [7.0, 12.25], "unused": ["x", "y"]})
    table = Table.from_frame(frame, {"patient_id": "Patient", "dose_gy": "Dose (Gy)", "n_lesions": "Lesions",
                                     "tn_mean": "T/N"}, caption="Cycle 1", digits={"dose_gy": 1})
    assert table.columns == ["Patient", "Dose (Gy)", "Lesions", "T/N"]
    assert table.rows == [["P1", "12.3", "3", "7.00"], ["P2", "n/a", "4", "12.25"]]
    assert table.caption == "Cycle 1"


def test_png_data_uri_round_trips_and_refuses_other_files(tmp_path):
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    png = tmp_path / "figure.png"
    png.write_bytes(data)
    uri = png_data_uri(png)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.removeprefix("data:image/png;base64,")) == data
    jpeg = tmp_path / "figure.jpg"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + bytes(16))
    with pytest.raises(ValueError) as error:
        png_data_uri(jpeg)
    assert str(error.value) == f"figure is not a PNG file: {jpeg}"


def test_a_page_is_written_whole_and_never_over_an_existing_one(tmp_path):
    provenance = {"software": "LuPRRT", "version": "0", "python": "3", "created_utc": "now", "calibration": [],
                  "inputs": [("a.nrrd", "ab" * 32)], "parameters": [("patient_id", "P1")]}
    lesions = Table(["Lesion", "T/N"], [["L01", "7.00"], ["L02", "n/a"]], caption="Lesion diameters")
    page = tmp_path / "patients" / "P1.html"
    context = {"patient_id": "P1", "subtitle": "2 lesions", "report_href": "../report.html", "figures": [],
               "lesions": lesions, "recist": None, "provenance": provenance}
    assert write_page(page, "patient.html.j2", **context) == page
    html = page.read_text(encoding="utf-8")
    assert [p.name for p in page.parent.iterdir()] == ["P1.html"]  # no .partial left behind
    assert stylesheet() in html and html.rstrip().endswith("</html>")
    assert "<h1>P1</h1>" in html and "<caption>Lesion diameters</caption>" in html and "RECIST" not in html
    assert "<tr><td>L01</td><td>7.00</td></tr>" in html and f"<td>a.nrrd</td><td>{'ab' * 32}</td>" in html
    with pytest.raises(FileExistsError) as error:
        write_page(page, "patient.html.j2", **context)
    assert str(error.value) == f"{page} exists; pass overwrite=True to replace it"
    assert page.read_text(encoding="utf-8") == html
    write_page(page, "patient.html.j2", overwrite=True, **context | {"subtitle": "3 lesions"})
    assert "3 lesions" in page.read_text(encoding="utf-8")


def test_text_from_the_data_is_escaped_and_the_stylesheet_is_not(tmp_path):
    """A patient id or a cell holding markup is shown as text, never run as HTML in the reader's browser."""
    provenance = {"software": "LuPRRT", "version": "0", "python": "3", "created_utc": "now", "calibration": [],
                  "inputs": [], "parameters": []}
    hostile = '<script>alert("x")</script>'
    page = write_page(tmp_path / "P.html", "patient.html.j2", patient_id=hostile, subtitle="O'Brien & <b>co</b>",
                      report_href="../report.html", figures=[], lesions=Table(["Lesion"], [[hostile]]), recist=None,
                      provenance=provenance)
    html = page.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "O&#39;Brien &amp; &lt;b&gt;co&lt;/b&gt;" in html
    assert f"<style>{stylesheet()}</style>" in html  # CSS selectors such as '>' survive
