"""Features of subscribers as of a time, from small frames: exact counts, local
hours, and nothing read from after ``as_of``."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from ml.features import features
from ml.history import make_history

AS_OF = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
ALICE, BOB, CAROL = 1, 2, 3


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def history(events: list[tuple[int, str, datetime, float | None]], until: datetime = AS_OF + timedelta(days=60)):
    frame = pd.DataFrame(events, columns=["subscriber_id", "name", "occurred_at", "value"])
    subscribers = pd.DataFrame({"subscriber_id": [ALICE, BOB, CAROL],
                                "timezone": ["Asia/Tokyo", None, "America/New_York"],
                                "created_at": [ago(200), ago(100), AS_OF + timedelta(days=1)]})
    return make_history(7, until, frame, subscribers)


BASE = [(ALICE, "sent", ago(2.5), None), (ALICE, "opened", ago(2), None), (ALICE, "sent", ago(10.5), None),
        (ALICE, "opened", ago(10), None), (ALICE, "clicked", ago(10), None), (ALICE, "opened", ago(40), None),
        (ALICE, "purchase", ago(30), 12.5), (ALICE, "purchase", ago(300), 7.5),
        (BOB, "sent", ago(3), None), (BOB, "bounced", ago(3), None)]


def test_it_counts_opens_clicks_and_sends_by_window_exactly():
    f = features(history(BASE), AS_OF).loc[ALICE]
    assert (f["opens_7d"], f["opens_28d"], f["opens_91d"], f["opens_total"]) == (1, 2, 3, 3)
    assert (f["clicks_7d"], f["clicks_28d"]) == (0, 1)
    assert f["sent_28d"] == 2 and f["open_rate_28d"] == 1.0
    assert f["days_since_open"] == 2.0 and f["days_since_click"] == 10.0
    assert f["active_weeks_4"] == 2  # weeks 0 and 1 before the cut
    assert f["opens_prev_28d"] == 1 and f["opens_trend"] == np.log1p(2) - np.log1p(1)


def test_it_counts_custom_events_as_conversions_and_their_values_as_revenue():
    f = features(history(BASE), AS_OF).loc[ALICE]
    assert f["conversions_91d"] == 1 and f["conversions_365d"] == 2
    assert f["revenue_365d"] == 20.0


def test_a_subscriber_who_never_opened_has_no_recency_and_counts_a_bounce():
    f = features(history(BASE), AS_OF).loc[BOB]
    assert np.isnan(f["days_since_open"]) and f["opens_total"] == 0
    assert f["bounces_total"] == 1 and f["tenure_days"] == 100.0


def test_a_subscriber_created_after_as_of_without_events_is_left_out():
    assert list(features(history(BASE), AS_OF).index) == [ALICE, BOB]


def test_open_hours_are_counted_in_the_subscribers_time_zone():
    opened_at = datetime(2026, 2, 20, 0, 30, tzinfo=timezone.utc)  # 09:30 in Tokyo, 00:30 UTC, 19:30 in New York
    events = [(ALICE, "opened", opened_at, None), (BOB, "opened", opened_at, None), (CAROL, "opened", opened_at, None)]
    f = features(history(events), AS_OF)
    assert f.loc[ALICE, "open_h09"] == 1 and f.loc[BOB, "open_h00"] == 1 and f.loc[CAROL, "open_h19"] == 1
    hours = f[[f"open_h{h:02d}" for h in range(24)]]
    assert hours.sum(axis=1).tolist() == [1, 1, 1]


def test_an_event_after_as_of_changes_nothing():
    later = [(ALICE, "opened", AS_OF + timedelta(seconds=1), None), (ALICE, "unsubscribed", AS_OF + timedelta(days=1), None),
             (BOB, "opened", AS_OF + timedelta(days=3), None), (BOB, "purchase", AS_OF + timedelta(days=5), 99.0),
             (CAROL, "opened", AS_OF + timedelta(days=2), None)]
    before = features(history(BASE), AS_OF)
    with_later = features(history(BASE + later), AS_OF)
    pd.testing.assert_frame_equal(before, with_later)
    assert features(history(BASE + later), AS_OF + timedelta(days=6)).loc[BOB, "opens_total"] == 1
