"""The one error path of every `luprrt` sub-command: exit status, one stderr line, CLI words."""

from __future__ import annotations

import logging

import pytest

from luprrt import cli
from luprrt.errors import fix, option, output_exists


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_missing_input_is_one_line_and_exit_2(tmp_path, capsys):
    status = cli.main(["recist", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2
    assert _lines(err) == [f"luprrt recist: error: measurement table not found: {tmp_path / 'missing.csv'}"]


@pytest.mark.parametrize("argv, complaint", [
    (["cohort", "s", "--out", "o", "--jobs", "0"], "argument --jobs: must be at least 1, got 0"),
    (["cohort", "s", "--out", "o", "--jobs", "-2"], "argument --jobs: must be at least 1, got -2"),
    (["recist", "m.csv", "--out", "o", "--too-small-mm", "-1"], "argument --too-small-mm: must be a finite "
                                                                "number above 0, got -1"),
    (["recist", "m.csv", "--out", "o", "--too-small-mm", "nan"], "must be a finite number above 0, got nan"),
    (["lobequant", "p", "--out", "o", "--margin-mm", "-3"], "argument --margin-mm: must be a finite number at "
                                                            "least 0, got -3"),
    (["dose", "p", "--out", "o", "--cycles", "0"], "argument --cycles: expected comma-separated cycle numbers"),
    (["recist", "m.csv"], "the following arguments are required: --out"),
])
def test_bad_options_are_refused_in_one_line(argv, complaint, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert len(_lines(err)) == 1, err
    assert complaint in err and err.rstrip().endswith(f"see luprrt {argv[0]} --help")


def test_a_bug_is_one_line_with_exit_1_and_the_traceback_only_with_verbose(monkeypatch, capsys):
    def broken(args):
        raise TypeError("unsupported operand")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["recist"].set_defaults(run=broken)
    assert cli.main(["recist", "m.csv", "--out", "o"]) == 1
    err = capsys.readouterr().err
    assert _lines(err) == ["luprrt recist: error: internal error TypeError: unsupported operand; please report "
                           "it with the command line (run again with -v for the traceback)"]
    assert cli.main(["-v", "recist", "m.csv", "--out", "o"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_warnings_show_after_success_and_are_counted_after_an_error(monkeypatch, capsys):
    def warns(args):
        logging.getLogger("luprrt.test").warning("first look at this")
        if args.no_figures:
            raise ValueError("m.csv: bad")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["recist"].set_defaults(run=warns)
    assert cli.main(["recist", "m.csv", "--out", "o"]) == 0
    assert _lines(capsys.readouterr().err) == ["WARNING luprrt.test: first look at this"]
    assert cli.main(["recist", "m.csv", "--out", "o", "--no-figures"]) == 2
    assert _lines(capsys.readouterr().err) == ["luprrt recist: error: m.csv: bad (1 warning before it: -v shows "
                                               "them)"]


def test_ctrl_c_is_exit_2_in_one_line(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["recist"].set_defaults(run=interrupted)
    assert cli.main(["recist", "m.csv", "--out", "o"]) == 2
    assert _lines(capsys.readouterr().err) == ["luprrt recist: error: interrupted; no output was written (earlier "
                                               "outputs are unchanged): run the command again"]


def test_core_messages_name_options_in_the_words_of_the_front_end(capsys, tmp_path):
    assert option("overwrite") == "overwrite="
    assert fix("overwrite", "True") == "pass overwrite=True"
    assert str(output_exists("a.csv")) == "output file exists: a.csv; pass overwrite=True to replace it"
    from luprrt.errors import option_words

    with option_words(cli.OPTION_WORDS):
        assert str(output_exists("a.csv")) == "output file exists: a.csv; add --overwrite to replace it"
        assert fix("injected_activity_mbq") is None
    with option_words({"injected_activity_mbq": "--administered-mbq CYCLE:MBQ"}):
        assert fix("injected_activity_mbq") == "give --administered-mbq CYCLE:MBQ"


def test_help_has_no_markup(capsys):
    parser = cli.build_parser()
    texts = [parser.format_help()]
    texts += [sub.format_help() for sub in parser._subparsers._group_actions[0].choices.values()]
    for text in texts:
        for markup in ("``", ":func:", ":mod:", ":class:", "`", "%%"):
            assert markup not in text, (markup, text[:200])
