"""Atomic outputs: a staged folder replaces its target whole; staging left by dead runs is removed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from luprrt.outputs import StagedFolder, StagedOutputs, remove_stale_staging, staging_owners


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_staged_folder_replaces_the_old_one_whole(tmp_path):
    target = tmp_path / "dicom"
    target.mkdir()
    (target / "old_only.dcm").write_text("old", encoding="utf-8")
    (target / "both.dcm").write_text("old", encoding="utf-8")
    with pytest.raises(FileExistsError) as error:
        StagedFolder(target)
    assert str(error.value).startswith(f"output file exists: {target}; ")
    with StagedFolder(target, overwrite=True) as staged:
        (staged.path / "both.dcm").write_text("new", encoding="utf-8")
        assert _names(target) == ["both.dcm", "old_only.dcm"]  # nothing changes before the commit
        assert staging_owners(target) == [os.getpid()]
        assert staged.commit() == target
    # No file of the earlier version survives, and no staging folder is left.
    assert _names(target) == ["both.dcm"] and (target / "both.dcm").read_text(encoding="utf-8") == "new"
    assert _names(tmp_path) == ["dicom"]
    assert staging_owners(target) == []


def test_a_target_that_appears_while_staging_is_not_replaced_without_overwrite(tmp_path):
    target = tmp_path / "dicom"
    with StagedFolder(target) as staged:
        (staged.path / "new.dcm").write_text("new", encoding="utf-8")
        target.mkdir()
        (target / "theirs.dcm").write_text("theirs", encoding="utf-8")
        with pytest.raises(FileExistsError) as error:
            staged.commit()
    assert str(error.value).startswith(f"output file exists: {target}; ")
    assert _names(target) == ["theirs.dcm"] and _names(tmp_path) == ["dicom"]


def test_staging_of_dead_runs_is_removed_and_that_of_live_ones_kept(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    (tmp_path / f".report.csv.luprrt-partial-{dead}-0a1b2c3d").write_text("half", encoding="utf-8")
    (tmp_path / f".out.luprrt-partial-{dead}-0a1b2c3e").mkdir()
    (tmp_path / f".out.luprrt-partial-{alive}-0a1b2c3f").mkdir()
    (tmp_path / ".out.luprrt-partial-notapid").mkdir()  # not ours to judge: kept
    remove_stale_staging(tmp_path)
    assert _names(tmp_path) == [f".out.luprrt-partial-{alive}-0a1b2c3f", ".out.luprrt-partial-notapid"]
    remove_stale_staging(tmp_path / "absent")  # no folder: nothing to do


def test_staged_outputs_paths_exist_only_inside_the_with_block(tmp_path):
    staged = StagedOutputs(tmp_path / "out", ["doses.csv"])
    with pytest.raises(RuntimeError) as error:
        staged.path("doses.csv")
    assert str(error.value) == "StagedOutputs.path() is used inside its with-block"
