"""Headless Chromium around a report page: what it refuses and how it fails, named, leaving nothing behind."""

from __future__ import annotations

import pytest

from luprrt.cohort.browser import check_page, find_chromium, print_pdf, screenshot

PAGE = "<!DOCTYPE html><html><head><title>t</title></head><body><p>report</p></body></html>"


def _page(folder, text=PAGE):
    page = folder / "report.html"
    page.write_text(text, encoding="utf-8")
    return page


def test_without_chromium_on_the_path_the_install_is_named_and_the_page_left_alone(tmp_path, monkeypatch):
    page = _page(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_chromium() is None
    with pytest.raises(FileNotFoundError) as error:
        check_page(page)
    assert str(error.value) == "no Chromium found (install the Debian package chromium: make system-deps)"
    # The probe copy is removed; the page is as it was.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    assert page.read_text(encoding="utf-8") == PAGE


def test_a_page_without_head_and_an_existing_pdf_are_refused(tmp_path):
    page = _page(tmp_path, "<html><body>no head</body></html>")
    with pytest.raises(ValueError) as error:
        check_page(page)
    assert str(error.value) == f"{page.resolve()}: no <head> element to inject the check into"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4 earlier")
    with pytest.raises(FileExistsError) as error:
        print_pdf(page, pdf)
    assert str(error.value) == f"{pdf.resolve()} exists; pass overwrite=True to replace it"
    assert pdf.read_bytes() == b"%PDF-1.4 earlier"


@pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed (Debian package chromium; "
                                                    "make system-deps installs it)")
def test_chromium_that_cannot_write_its_output_is_an_error_not_a_missing_file(tmp_path):
    page = _page(tmp_path)
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(RuntimeError, match=r"^Chromium wrote no screenshot \(exit -?\d+\)"):
        screenshot(page, missing / "page.png", timeout_s=60.0)
    with pytest.raises(RuntimeError, match=r"^Chromium wrote no PDF \(exit -?\d+\)"):
        print_pdf(page, missing / "page.pdf", timeout_s=60.0)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["report.html"]  # no partial file left
