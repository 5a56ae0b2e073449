"""luprrt.workflows exposes its runs lazily: each public name from its module, unknown names refused."""

from __future__ import annotations

import importlib

import pytest

import luprrt.workflows as workflows


def test_public_names_come_from_their_modules_and_unknown_ones_are_refused():
    names = dir(workflows)
    assert names == sorted(names) and {"run_calibration", "LobeQuantInputs", "analyse_cohort"} <= set(names)
    for name in names:
        module = importlib.import_module(f"luprrt.workflows.{workflows._PUBLIC[name]}")
        assert getattr(workflows, name) is getattr(module, name)
    with pytest.raises(AttributeError) as error:
        workflows.run_dosimetry_everywhere  # noqa: B018 - the attribute access is the test
    assert str(error.value) == "module 'luprrt.workflows' has no attribute 'run_dosimetry_everywhere'"
