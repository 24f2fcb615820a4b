"""The behaviour check's comparison (the runs themselves are `scripts/check_behaviour.py`)."""

import pytest

from agents.analysis.behaviour import comparable, differences, largest_difference


def test_clock_dependent_values_are_not_compared():
    assert comparable({"step": 1, "time": 3.2, "train/steps_per_second": 9.0, "compile/plan_seconds_n1": 1.0,
                       "loss/total": 0.5}) == {"step": 1, "loss/total": 0.5}


def test_differences_name_the_run_record_and_key():
    snapshot = {"train": [{"step": 100, "loss/total": 1.0}], "pretrain": [{"step": 0}]}
    assert differences(snapshot, snapshot) == []
    changed = {"train": [{"step": 100, "loss/total": 1.5}], "pretrain": [{"step": 0}, {"step": 1}]}
    lines = differences(snapshot, changed)
    assert "train[0] step 100: loss/total 1.0 -> 1.5" in lines
    assert "pretrain: 1 records in the snapshot, 2 now" in lines
    assert differences(snapshot, {"train": snapshot["train"]}) == ["pretrain: only in the snapshot"]


def test_new_keys_are_accepted_only_when_asked():
    snapshot = {"train": [{"step": 100, "loss/total": 1.0}]}
    more = {"train": [{"step": 100, "loss/total": 1.0, "model/latent_std_mean": 0.1}]}
    assert differences(snapshot, more) and differences(snapshot, more, new_keys=True) == []
    assert differences(snapshot, {"train": [{"step": 100}]}, new_keys=True)  # a value that went missing


def test_rounding_on_another_cpu_is_accepted_only_within_rtol():
    snapshot = {"train": [{"step": 100, "loss/total": 1.0, "done": True}]}
    rounded = {"train": [{"step": 100, "loss/total": 1.0 + 3e-6, "done": True}]}
    assert differences(snapshot, rounded)  # exact by default
    assert differences(snapshot, rounded, rtol=1e-4) == []
    assert differences(snapshot, {"train": [{"step": 100, "loss/total": 1.01, "done": True}]}, rtol=1e-4)
    assert differences(snapshot, {"train": [{"step": 100, "loss/total": 1.0, "done": False}]}, rtol=1.0)  # not a number
    assert largest_difference(snapshot, rounded) == (pytest.approx(3e-6, rel=1e-3), "train[0] step 100: loss/total")
