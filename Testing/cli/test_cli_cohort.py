"""`luprrt cohort` and `luprrt demo` argument handling and their one-line errors."""

from __future__ import annotations

import pytest

from luprrt.cli import build_parser, main


def test_cohort_names_a_missing_study(tmp_path, capsys):
    assert main(["cohort", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "luprrt cohort: error: study folder not found" in capsys.readouterr().err


def test_cohort_names_a_patient_without_ia_side(tmp_path, capsys):
    patient = tmp_path / "study" / "p1"
    patient.mkdir(parents=True)
    (patient / "manifest.json").write_text('{"patient_id": "P1", "sessions": []}')
    assert main(["cohort", str(tmp_path / "study"), "--out", str(tmp_path / "o")]) == 2
    assert "patient P1: IA side '' must be one of ('right', 'left')" in capsys.readouterr().err


def test_demo_defaults_and_every_subcommand_has_help(capsys):
    args = build_parser().parse_args(["demo", "--out", "x"])
    assert (args.patients, args.jobs, args.ia_tn_factor, args.overwrite) == (10, 2, 1.3, False)
    # The demo corrects partial volume with the synthetic SPECT's known 12 mm resolution; a study needs it given.
    assert (args.pvc_fwhm_mm, args.pdf) == (12.0, False)
    assert build_parser().parse_args(["cohort", "s", "--out", "x", "--pdf"]).pvc_fwhm_mm is None
    for command in ("lobequant", "dose", "recist", "cohort", "demo"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: luprrt " + command in capsys.readouterr().out
