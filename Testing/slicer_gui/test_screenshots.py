"""``make screenshots`` regenerates every panel's PNG (before and after Apply) without error."""

from __future__ import annotations

import struct


def test_every_panel_is_grabbed_before_and_after_apply(slicer_layer, gui, patient_folder, tmp_path, shown):
    from slicer_host.screenshots import PANEL_WIDTH_PX, TUTORIALS, write_screenshots

    written = write_screenshots(tmp_path, patient_folder)
    expected = [tmp_path / f"{name}_{stage}.png" for name in TUTORIALS for stage in ("before", "after")]
    assert written == expected
    for path in written:
        header = path.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n", path
        width, height = struct.unpack(">II", header[16:24])
        assert width == PANEL_WIDTH_PX and height > 600, (path, width, height)  # the whole panel, not a stub
    # Apply changed what the panel shows (filled output selectors, enabled export buttons).
    for name in TUTORIALS:
        assert (tmp_path / f"{name}_before.png").read_bytes() != (tmp_path / f"{name}_after.png").read_bytes()
