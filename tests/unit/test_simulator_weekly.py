"""The simulator's weekly outcomes (bench/churn_ceiling.py filters them) are the
history's own, and asking for them changes nothing the simulator draws."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ml.simulator import simulate


def test_the_weekly_outcomes_are_the_historys_own_and_draw_nothing_more():
    weekly: list[dict[str, Any]] = []
    plain = simulate(1500, weeks=20, seed=4, futures=0)
    traced = simulate(1500, weeks=20, seed=4, futures=0, weekly=weekly)
    pd.testing.assert_frame_equal(plain.history.events, traced.history.events)
    pd.testing.assert_frame_equal(plain.truth, traced.truth)
    assert len(weekly) == 20
    names = traced.history.events["name"]
    assert sum(len(sent) for week in weekly for sent in week["sent"]) == (names == "sent").sum()
    assert sum(len(week["bought"]) for week in weekly) == (names == "purchase").sum()
    opened = sum(len(o) for week in weekly for o in week["open_events"])
    clicked = sum(int(c.sum()) for week in weekly for c in week["clicks"])
    # An open or a click can land after the end, where the history stops.
    assert 0 < (names == "opened").sum() <= opened and 0 < (names == "clicked").sum() <= clicked
    for week in weekly:
        for sent, opened_now in zip(week["sent"], week["opened"]):
            assert np.isin(opened_now, sent).all()
        assert np.isin(week["bought"], week["may_buy"]).all()
