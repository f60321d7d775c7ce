"""core.gc_pacing: the collector's first threshold is raised while a job runs and
restored by the last of several jobs to leave."""
from __future__ import annotations

import gc

import pytest

from core.gc_pacing import FIRST_THRESHOLD, fewer_collections


@pytest.fixture
def default_thresholds():
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_raised_inside_and_restored_after(default_thresholds) -> None:
    with fewer_collections():
        assert gc.get_threshold() == (FIRST_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_the_last_of_overlapping_users_restores(default_thresholds) -> None:
    first, second = fewer_collections(), fewer_collections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == FIRST_THRESHOLD  # the second job still runs
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_when_the_job_fails(default_thresholds) -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the job failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_set_before_is_kept(default_thresholds) -> None:
    gc.set_threshold(FIRST_THRESHOLD * 2, 10, 10)
    with fewer_collections():
        assert gc.get_threshold()[0] == FIRST_THRESHOLD * 2
    assert gc.get_threshold()[0] == FIRST_THRESHOLD * 2
