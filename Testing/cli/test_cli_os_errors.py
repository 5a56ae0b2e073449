"""Operating-system errors told in the user's words: which file, what went wrong, what to do."""

from __future__ import annotations

import argparse
import errno
import os

import pytest

from luprrt.cli import EXIT_USER_ERROR, describe_failure


def _describe(code: int, path, out) -> str:
    status, message = describe_failure(OSError(code, os.strerror(code), None if path is None else str(path)),
                                       argparse.Namespace(out=out))
    assert status == EXIT_USER_ERROR
    return message


@pytest.mark.parametrize(("code", "inside", "expected"), [
    (errno.ENOSPC, True, "disk full while writing {path}; free space or choose another --out (earlier outputs are "
                         "unchanged)"),
    (errno.EFBIG, True, "file too large while writing {path} (file-size limit reached); raise the limit or choose "
                        "another --out (earlier outputs are unchanged)"),
    (errno.ENOENT, False, "not found: {path}; check the path"),
    (errno.EISDIR, False, "{path} is a folder where a file is expected; give a file"),
    (errno.ENOTDIR, False, "{path} is a file where a folder is expected; give a folder"),
    (errno.EIO, True, "cannot write {path}: {reason}; free space, check permissions or choose another --out"),
    (errno.EIO, False, "{path}: {reason}"),
], ids=["disk full", "file too large", "not found", "folder for file", "file for folder", "write I/O", "read I/O"])
def test_os_errors_name_the_file_and_the_fix(tmp_path, code, inside, expected):
    out = tmp_path / "out"
    path = out / "doses.csv" if inside else tmp_path / "spect.dcm"
    assert _describe(code, path, out) == expected.format(path=path, reason=os.strerror(code))


def test_os_errors_without_a_usable_path_give_the_reason(tmp_path):
    out = tmp_path / "out"
    reason = os.strerror(errno.EIO)
    assert _describe(errno.EIO, None, out) == reason
    # A path that cannot be resolved (a symbolic-link loop) is not taken for the output.
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    looped = tmp_path / "a" / "x.csv"
    assert _describe(errno.EIO, looped, out) == f"{looped}: {reason}"
