"""Who a broadcast goes to: the members of its segment (audience.segment_filter)
or the subscribers of its topic, as a Select of subscriber ids. Only ``active``
subscribers are sent anything (the caller adds that); the suppression list is
applied by the sender, as for every message."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from audience.segment_filter import member_ids
from models import Broadcast, Segment, Topic, TopicSubscription


class AudienceGoneError(Exception):
    """The broadcast's segment or topic no longer exists."""


def audience(session: Session, broadcast: Broadcast, now: datetime) -> Select[Any]:
    if broadcast.segment_id is not None:
        segment = session.scalar(select(Segment).where(Segment.id == broadcast.segment_id,
                                                       Segment.account_id == broadcast.account_id))
        if segment is None:
            raise AudienceGoneError(f"segment {broadcast.segment_id} no longer exists")
        return member_ids(broadcast.account_id, segment.filter, now)
    if broadcast.topic is None:
        raise AudienceGoneError("its segment was deleted")
    topic_id = session.scalar(select(Topic.id).where(Topic.account_id == broadcast.account_id,
                                                     Topic.key == broadcast.topic))
    if topic_id is None:
        raise AudienceGoneError(f"topic {broadcast.topic!r} no longer exists")
    return select(TopicSubscription.subscriber_id).where(TopicSubscription.topic_id == topic_id,
                                                         TopicSubscription.account_id == broadcast.account_id,
                                                         TopicSubscription.status == "subscribed")
