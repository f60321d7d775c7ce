"""Reading an account's history into pandas, compactly."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy.orm import Session


@dataclass
class History:
    """Events and subscribers of one account up to ``until``."""

    account_id: int
    until: datetime
    events: pd.DataFrame
    subscribers: pd.DataFrame


def load_history(session: Session, account_id: int, until: datetime) -> History:
    raise NotImplementedError
