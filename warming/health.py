"""Judging one group's recent traffic: advance, hold, step back or pause.

The defaults are the levels at which the receiving side acts on a sender:

- hold: bounces 5% and complaints 0.1%, where Amazon SES puts an account under
  review. Deferrals 10%: a tenth of the mail answered with 4xx means the receiver is
  already throttling the IP, and more volume would only be deferred too.
- step back: bounces 10%, where SES may pause an account; complaints 0.3%, the spam
  rate Gmail and Yahoo tell bulk senders never to reach. Deferrals 20%.
- pause: bounces 20%, twice SES's pause level: a day that bad is a list problem
  (stale or bought addresses) that no pace can fix, so a person must look.
  Complaints 0.5%, where SES may pause an account. Deferrals 50%: with half the mail
  refused for now, retrying it at any volume looks like a spam run.

Deferred mail is retried rather than lost, so deferral levels sit well above the
bounce levels. A rate acts when it passes a level (strictly above it): 0 means
"any at all" and 1 means "never".
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from core.validators import is_int
from warming.errors import ThresholdsError, is_number

ACTIONS = ("advance", "hold", "step_back", "pause")  # least to most severe
RATES = ("bounce", "complaint", "deferral")
LEVELS = ("hold", "step_back", "pause")
MAX_MIN_SAMPLE = 1_000_000


@dataclass(frozen=True)
class Levels:
    """The rates (fractions, 0.05 = 5%) past which one kind of failure holds, steps back or pauses."""

    hold: float
    step_back: float
    pause: float


@dataclass(frozen=True)
class Thresholds:
    """A plan's health thresholds; validated on construction, naming the bad field.

    ``min_sample``: with fewer sends than this, rates are too noisy to undo progress
    on (one complaint in 50 sends is 2%), so such a day can hold the plan but never
    step it back or pause it. A day with no sends at all holds: nothing was judged
    and no reputation was earned, and a plan advances only on good health.
    """

    bounce: Levels = Levels(hold=0.05, step_back=0.10, pause=0.20)
    complaint: Levels = Levels(hold=0.001, step_back=0.003, pause=0.005)
    deferral: Levels = Levels(hold=0.10, step_back=0.20, pause=0.50)
    min_sample: int = 100

    def __post_init__(self) -> None:
        for rate in RATES:
            levels = getattr(self, rate)
            if not isinstance(levels, Levels):
                raise ThresholdsError(f"thresholds.{rate}", "Must be an object of hold, step_back and pause.")
            previous = None
            for level in LEVELS:
                value = getattr(levels, level)
                if not is_number(value) or not 0 <= value <= 1:
                    raise ThresholdsError(f"thresholds.{rate}.{level}", "Must be a rate from 0 to 1.")
                if previous is not None and value < getattr(levels, previous):
                    raise ThresholdsError(f"thresholds.{rate}.{level}",
                                          f"Must be at least the {previous} threshold ({getattr(levels, previous)}).")
                previous = level
        if not is_int(self.min_sample) or not 0 <= self.min_sample <= MAX_MIN_SAMPLE:
            raise ThresholdsError("thresholds.min_sample", f"Must be an integer from 0 to {MAX_MIN_SAMPLE:,}.")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Thresholds:
        """Thresholds from a plan's JSON settings; every level left out keeps its default."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ThresholdsError("thresholds", "Must be an object.")
        default = cls()
        for key in data:
            if key not in RATES and key != "min_sample":
                raise ThresholdsError(f"thresholds.{key}", "Unknown field.")
        values: dict[str, Any] = {"min_sample": data.get("min_sample", default.min_sample)}
        for rate in RATES:
            given = data.get(rate)
            given = {} if given is None else given
            if not isinstance(given, Mapping):
                raise ThresholdsError(f"thresholds.{rate}", "Must be an object.")
            for key in given:
                if key not in LEVELS:
                    raise ThresholdsError(f"thresholds.{rate}.{key}", "Unknown field.")
            values[rate] = Levels(**{**asdict(getattr(default, rate)), **given})
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Traffic:
    """What one group sent in the judged window, and how it went.

    ``sent`` counts messages handed to receiving servers; ``bounced`` permanent
    failures (5xx, and bounces reported later); ``complained`` spam reports;
    ``deferred`` messages answered with a 4xx at least once.
    """

    sent: int = 0
    bounced: int = 0
    complained: int = 0
    deferred: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not is_int(value) or value < 0:
                raise ValueError(f"Traffic.{f.name} must be a non-negative integer, not {value!r}.")

    def __add__(self, other: Traffic) -> Traffic:
        """Days summed into one window, so a caller can judge the last few days together."""
        return Traffic(self.sent + other.sent, self.bounced + other.bounced,
                       self.complained + other.complained, self.deferred + other.deferred)

    def rate(self, kind: str) -> float:
        """``bounce``, ``complaint`` or ``deferral`` as a fraction of the sent mail (0 when none was sent)."""
        count = {"bounce": self.bounced, "complaint": self.complained, "deferral": self.deferred}[kind]
        return count / self.sent if self.sent else 0.0

    @property
    def bounce_rate(self) -> float:
        return self.rate("bounce")

    @property
    def complaint_rate(self) -> float:
        return self.rate("complaint")

    @property
    def deferral_rate(self) -> float:
        return self.rate("deferral")


@dataclass(frozen=True)
class Verdict:
    """What the plan should do next, and a reason a person reading the plan's history understands."""

    action: str
    reason: str


def judge(traffic: Traffic, thresholds: Thresholds = Thresholds()) -> Verdict:
    """The action the worst rate calls for; the reason names every rate that called for it."""
    if traffic.sent == 0:
        return Verdict("hold", "nothing was sent, so there is no health to judge and no reputation earned")
    worst = "advance"
    findings: list[str] = []
    for rate in RATES:
        value = traffic.rate(rate)
        levels: Levels = getattr(thresholds, rate)
        action = next((level for level in reversed(LEVELS) if value > getattr(levels, level)), "advance")
        if action == "advance":
            continue
        finding = f"{rate} rate {percent(value)} passed the {action.replace('_', ' ')} threshold " \
                  f"{percent(getattr(levels, action))}"
        if ACTIONS.index(action) > ACTIONS.index(worst):
            worst, findings = action, [finding]
        elif action == worst:
            findings.append(finding)
    if worst == "advance":
        rates = ", ".join(f"{rate} {percent(traffic.rate(rate))}" for rate in RATES)
        return Verdict("advance", f"{rates} of {traffic.sent:,} sent: all under the hold thresholds")
    reason = "; ".join(findings)
    if worst in ("step_back", "pause") and traffic.sent < thresholds.min_sample:
        return Verdict("hold", f"{reason}, but {traffic.sent:,} sent is fewer than the "
                               f"{thresholds.min_sample:,} needed to {worst.replace('_', ' ')}: holding")
    return Verdict(worst, reason)


def percent(rate: float) -> str:
    """5.0%, 0.10%: two decimals below 1%, where complaint thresholds live."""
    value = rate * 100
    return f"{value:.2f}%" if value < 1 else f"{value:.1f}%"
