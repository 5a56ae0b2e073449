"""Open a report in headless Chromium: check it, screenshot it, print it to PDF.

Uses the system's ``chromium`` (Debian package; ``make system-deps`` installs it) through its
command line only: ``--dump-dom`` on a copy of the page with a small checking script injected,
``--screenshot`` and ``--print-to-pdf``. No browser-driver package is needed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")

# Runs in the page: collects script errors and console.error calls from the start, then after
# load the images that failed to decode and every element whose right edge passes the window.
_PROBE = """<script>
window.__luprrt = {errors: []};
window.addEventListener('error', e => window.__luprrt.errors.push(String(e.message || e.type)), true);
const __err = console.error; console.error = (...a) => { window.__luprrt.errors.push(a.join(' ')); __err(...a); };
window.addEventListener('load', () => {
  const width = window.innerWidth;
  const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt || i.src.slice(0, 40));
  const wide = [...document.body.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > width + 0.5)
      .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : ''));
  const out = {errors: window.__luprrt.errors, broken_images: broken, n_images: document.images.length,
               scroll_width: document.documentElement.scrollWidth, window_width: width, overflowing: wide.slice(0, 20)};
  const node = document.createElement('pre'); node.id = 'luprrt-probe'; node.textContent = JSON.stringify(out);
  document.body.appendChild(node);
});
</script>"""


def find_chromium() -> str | None:
    """Path of a Chromium executable, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(arguments: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium found (install the Debian package chromium: make system-deps)")
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--allow-file-access-from-files",
            "--no-first-run", "--disable-dev-shm-usage"]
    return subprocess.run(base + arguments, capture_output=True, text=True, timeout=timeout_s, check=False)


def check_page(page: str | Path, width_px: int = 1280, height_px: int = 900, timeout_s: float = 120.0) -> dict:
    """Load ``page`` at ``width_px`` and report script/console errors, broken images and horizontal overflow.

    Returns a dict: ``errors`` (messages), ``broken_images``, ``n_images``, ``scroll_width`` and
    ``window_width`` (px) and ``overflowing`` (elements reaching past the window's right edge).
    The page is copied next to itself with the probe injected; the original is not touched.
    """
    page = Path(page).resolve()
    text = page.read_text(encoding="utf-8")
    head = text.find("<head>")
    if head < 0:
        raise ValueError(f"{page}: no <head> element to inject the check into")
    with tempfile.NamedTemporaryFile("w", suffix=".html", dir=page.parent, delete=False, encoding="utf-8") as probe:
        probe.write(text[:head + 6] + _PROBE + text[head + 6:])
    try:
        done = _run([f"--window-size={width_px},{height_px}", "--virtual-time-budget=10000", "--dump-dom",
                     Path(probe.name).as_uri()], timeout_s)
    finally:
        Path(probe.name).unlink(missing_ok=True)
    start = done.stdout.find('<pre id="luprrt-probe">')
    if start < 0:
        raise RuntimeError(f"Chromium did not run the page check (exit {done.returncode}): {done.stderr[-500:]}")
    end = done.stdout.find("</pre>", start)
    payload = done.stdout[start + len('<pre id="luprrt-probe">'):end]
    return json.loads(payload.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def screenshot(page: str | Path, png: str | Path, width_px: int = 1280, height_px: int = 1500,
               timeout_s: float = 120.0) -> Path:
    """PNG of the top ``height_px`` of ``page`` rendered ``width_px`` wide."""
    png = Path(png).resolve()
    done = _run([f"--window-size={width_px},{height_px}", "--virtual-time-budget=10000", f"--screenshot={png}",
                 Path(page).resolve().as_uri()], timeout_s)
    if not png.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-500:]}")
    return png


def print_pdf(page: str | Path, pdf: str | Path, overwrite: bool = False, timeout_s: float = 300.0) -> Path:
    """Print ``page`` to ``pdf`` with the page's print stylesheet (what the browser's Print does)."""
    pdf = Path(pdf).resolve()
    if pdf.exists() and not overwrite:
        raise FileExistsError(f"{pdf} exists; pass overwrite=True to replace it")
    partial = pdf.with_name(pdf.name + ".partial")
    done = _run([f"--print-to-pdf={partial}", "--no-pdf-header-footer", "--virtual-time-budget=10000",
                 Path(page).resolve().as_uri()], timeout_s)
    if not partial.is_file() or not partial.read_bytes().startswith(b"%PDF"):
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"Chromium wrote no PDF (exit {done.returncode}): {done.stderr[-500:]}")
    partial.replace(pdf)
    return pdf
