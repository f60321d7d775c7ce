"""When each member's message is due: at once, at ``local_time`` in their time zone,
or at their learned hour (``best_time``), as one SQL expression over the audience.

Time zones are worked out in Python (zoneinfo, so daylight saving and unknown
names behave as everywhere else in the platform: core.zones), once per distinct
zone (and learned hour) among the members, and written into the statement as a
CASE on the member's zone: the database needs no zone support (SQLite has none)
and the work grows with the number of zones, not of members. A member without a
zone, or with one the platform does not know, gets UTC (accounts have no zone).
"""
from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, String, case, cast, func, literal, select
from sqlalchemy.orm import Session

from core.zones import zone
from models import Subscriber, SubscriberScore
from models.base import UTCDateTime
from sequencing.best_time import best_time as best_moment


def local_moment(now: datetime, hhmm: str, tz_name: str | None) -> datetime:
    """The first moment at or after ``now`` whose wall-clock time in the zone is ``hhmm``
    (so within the next 24 hours)."""
    tz = zone(tz_name)
    hours, minutes = (int(part) for part in hhmm.split(":"))
    local = now.astimezone(tz)
    # A wall time the clock change skips (a DST gap) is read with the offset before
    # it (zoneinfo's fold=0), so 02:30 on the night clocks go 02:00 -> 03:00 is 03:30.
    for days in (0, 1, 2):
        day = (local + timedelta(days=days)).date()
        moment = datetime.combine(day, time(hours, minutes), tz)
        if moment >= now:
            return moment.astimezone(now.tzinfo)
    return now


def learned_moment(now: datetime, hour: int, tz_name: str | None) -> datetime:
    """The member's learned hour (sequencing.best_time with no send window): now when
    it is that hour locally, else the start of the next such hour."""
    return best_moment(now, hour, None, None, zone(tz_name))


def due_expression(session: Session, members: Select[Any], now: datetime, local_time: str | None,
                   best_time: bool, zone_of: Any, hour_of: Any) -> Any:
    """The due moment of each member's message for the audience ``members`` (a
    Select of subscriber ids), as an expression over the member's zone (``zone_of``)
    and learned hour (``hour_of``): columns, or correlated subqueries."""
    moment: Any = literal(now, UTCDateTime())
    if not local_time and not best_time:
        return moment
    audience = Subscriber.id.in_(members)
    zone_key = func.coalesce(zone_of, "")
    if local_time:
        zones = session.scalars(select(func.coalesce(Subscriber.timezone, "")).where(audience).distinct()).all()
        by_zone = {z: local_moment(now, local_time, z or None) for z in zones}
        moment = literal(local_moment(now, local_time, None), UTCDateTime())
        if by_zone:
            moment = case({z: literal(at, UTCDateTime()) for z, at in by_zone.items()}, value=zone_key, else_=moment)
    if not best_time:
        return moment
    pairs = session.execute(select(Subscriber.timezone, SubscriberScore.best_send_hour).distinct()
                            .join(SubscriberScore, SubscriberScore.subscriber_id == Subscriber.id)
                            .where(audience, SubscriberScore.best_send_hour.is_not(None))).all()
    by_pair = {f"{tz or ''}|{hour}": learned_moment(now, int(hour), tz) for tz, hour in pairs}
    if by_pair:
        key = zone_key + "|" + func.coalesce(cast(hour_of, String), "")
        moment = case({k: literal(at, UTCDateTime()) for k, at in by_pair.items()}, value=key, else_=moment)
    return moment
