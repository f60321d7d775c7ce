"""A sequence's experiments: for each email step with an ``experiment`` option, the
decision (``analytics.experiments``) on its variants' rollup counts, with the
rollups' ``as_of`` so a reader knows which events it stands on.

``sent`` is a variant's messages with a ``sent`` event and ``successes`` its messages
with at least one of the experiment's metric (``opened``, ``clicked``, ``converted``),
each message once, as ``analytics.sequence_stats`` counts them.

A step whose experiment has a ``holdout_percent`` (or held visits from when it
had one) also reports its "no email" arm: the visits the engine held
(models.ExperimentHoldout) and, for the ``converted`` metric, those followed by
the sequence's goal event within ``goal.within_days`` of the visit (any such
event, not last-touch: no email competes for a visit that sent none). These are
read live from the table, not from the rollups, so they can be a little ahead
of the variants' ``as_of``.

The first decided or no-difference answer per step is stored
(models.ExperimentDecision), by ``settle_experiments`` after each fold or by the
read that first sees it; from then on that stored answer is the step's, whatever
later counts say (the engine promotes a stored winner, so the loser's counts
freeze and could reverse a live re-decision).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from analytics.experiments import experiment_report
from analytics.rollups import days_after, fold_chunk
from analytics.sequence_stats import step_counts
from analytics.sequence_cache import Counted, probe, serve
from models import ExperimentDecision, ExperimentHoldout, Sequence, Step
from models.bulk import insert_ignoring_conflicts


def _experiment_steps(sequence: Sequence) -> Iterator[tuple[Step, dict[str, Any], list[str]]]:
    for step in sorted(sequence.steps, key=lambda s: s.position):
        options = step.config.get("experiment") if step.type == "email" else None
        names = [v.get("name") for v in step.config.get("variants") or []]
        if options and len(names) >= 2:
            yield step, options, names


def stored_decisions(session: Session, step_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The stored ``{"status", "winner"}`` per step id that has one."""
    if not step_ids:
        return {}
    rows = session.execute(select(ExperimentDecision.step_id, ExperimentDecision.status, ExperimentDecision.winner)
                           .where(ExperimentDecision.step_id.in_(step_ids)))
    return {step_id: {"status": status, "winner": winner} for step_id, status, winner in rows}


def holdout_counts(session: Session, sequence: Sequence, steps: list[tuple[Step, dict[str, Any]]]
                   ) -> dict[int, dict[str, Any]]:
    """Step id -> ``{"held", "converted"}`` of the steps' "no email" arms (steps
    with a holdout_percent or held visits), in two statements whatever the number
    of steps: the visits per step, and for the ``converted`` experiments a join of
    their held visits with the goal events, counted distinct per step (the planner
    may hash it: at 100,000 held visits it took 0.54 s where an EXISTS probe per
    visit took 0.91 s). ``converted`` is None for the other metrics."""
    step_ids = [step.id for step, _options in steps]
    if not step_ids:
        return {}
    held = dict(session.execute(
        select(ExperimentHoldout.step_id, func.count()).where(ExperimentHoldout.account_id == sequence.account_id,
                                                              ExperimentHoldout.step_id.in_(step_ids))
        .group_by(ExperimentHoldout.step_id)).all())
    armed = [(step, options) for step, options in steps if options.get("holdout_percent") or held.get(step.id)]
    goal = (sequence.settings or {}).get("goal") or {}
    converting = [step.id for step, options in armed if options.get("metric") == "converted" and held.get(step.id)]
    converted: dict[int, int] = {}
    if goal.get("event") and converting:
        after = days_after(session.get_bind().dialect.name, "h.held_at", "within")
        converted = {int(step_id): int(n) for step_id, n in session.execute(text(
            "SELECT h.step_id, count(DISTINCT h.id) FROM experiment_holdouts h JOIN events v"
            " ON v.subscriber_id = h.subscriber_id WHERE h.account_id = :account AND h.step_id IN :steps"
            " AND v.account_id = :account AND v.name = :event AND v.occurred_at >= h.held_at"
            f" AND v.occurred_at <= {after} GROUP BY h.step_id").bindparams(bindparam("steps", expanding=True)),
            {"account": sequence.account_id, "steps": converting, "event": str(goal["event"]),
             "within": int(goal.get("within_days") or 7)})}
    return {step.id: {"held": int(held.get(step.id, 0)),
                      "converted": converted.get(step.id, 0) if options.get("metric") == "converted" else None}
            for step, options in armed}


def _arm_steps(sequence: Sequence) -> list[tuple[Step, dict[str, Any]]]:
    return [(step, options) for step, options, _names in _experiment_steps(sequence)]


def _arms_key(sequence: Sequence) -> dict[str, Any]:
    """What the arms' counts depend on: the goal, and each experiment step's metric and arm."""
    return {"goal": (sequence.settings or {}).get("goal") or None,
            "steps": [[step.id, options.get("metric"), bool(options.get("holdout_percent"))]
                      for step, options in _arm_steps(sequence)]}


def _held_visits_up_to(session: Session, sequence: Sequence, limit: int) -> int:
    step_ids = [step.id for step, _options in _arm_steps(sequence)]
    if not step_ids:
        return 0
    return probe(session, "SELECT 1 FROM experiment_holdouts WHERE step_id IN ("
                 + ", ".join(str(int(i)) for i in step_ids) + ")", {}, limit)


def _arms_counted(session: Session, sequence: Sequence) -> dict[str, dict[str, Any]]:
    return {str(step_id): counts for step_id, counts in holdout_counts(session, sequence, _arm_steps(sequence)).items()}


# For analytics.sequence_cache: the arms of every experiment step of a sequence.
ARMS = Counted(key=_arms_key, size=_held_visits_up_to, count=_arms_counted)


def _reports(session: Session, sequence: Sequence, now: datetime,
             unsettled_only: bool = False) -> tuple[list[dict[str, Any]], int, bool]:
    """The experiment objects of the sequence's experiment steps (with
    ``unsettled_only``, of those without a stored decision) and how many decisions
    they stored: the first time a step's answer is decided or no difference, it is
    stored, so a decision once given out is the one kept."""
    steps = list(_experiment_steps(sequence))
    settled = stored_decisions(session, [step.id for step, _options, _names in steps])
    if unsettled_only:
        steps = [(step, options, names) for step, options, names in steps if step.id not in settled]
    if not steps:
        return [], 0, False
    counts = step_counts(session, sequence)
    rows = {(row["step_id"], row["variant"]): row for row in counts["steps"]}
    # The pool's settling needs no fresh arms (they never decide): it asks for none.
    arms = serve(session, sequence, "experiment_arms", now, refresh=not unsettled_only)
    reports, fresh = [], []
    for step, options, names in steps:
        variants = []
        for name in names:
            row = rows.get((step.id, name)) or {"sent": 0, options["metric"]: 0}
            # An open or click can be folded before its message's ``sent`` event, or
            # come without one (imported history, a provider's webhook racing our
            # send); a message opened was sent, and the rule needs successes <= sent.
            successes = row[options["metric"]]
            variants.append({"name": name, "sent": max(row["sent"], successes), "successes": successes})
        report = {**experiment_report(step.position, options, variants, settled.get(step.id),
                                      arms.counts.get(str(step.id))),
                  "as_of": counts["as_of"], "holdout_as_of": arms.as_of if str(step.id) in arms.counts else None}
        reports.append(report)
        if step.id not in settled and report["status"] in ("decided", "no_difference"):
            fresh.append((step, report))
    return reports, _store(session, sequence, fresh, now), arms.ask


def _store(session: Session, sequence: Sequence, fresh: list[tuple[Step, dict[str, Any]]], now: datetime) -> int:
    """Insert the new decisions, ignoring a step another transaction decided first,
    and answer with what is stored (that other decision, where one won)."""
    if not fresh:
        return 0
    rows = [{"account_id": sequence.account_id, "sequence_id": sequence.id, "step_id": step.id,
             "status": report["status"], "winner": report["winner"], "decided_at": now,
             "report": {**report, **{key: report[key].isoformat() if report[key] else None
                                     for key in ("as_of", "holdout_as_of")}}}
            for step, report in fresh]
    inserted = insert_ignoring_conflicts(session, ExperimentDecision, rows, ExperimentDecision.id)
    stored = stored_decisions(session, [step.id for step, _report in fresh])
    for step, report in fresh:
        report.update(stored[step.id])
    return len(inserted)


def experiment_results(session: Session, sequence: Sequence, now: datetime) -> tuple[list[dict[str, Any]], bool]:
    """One experiment object per email step with an experiment, in step order; the
    variants in the step's order (the first is the control). A stored decision is
    the answer's status and winner; one reached now is stored (the caller commits).
    And whether the caller should ask the analytics pool for new arm counts
    (analytics.sequence_cache; after committing)."""
    reports, _stored, ask = _reports(session, sequence, now)
    return reports, ask


def settle_experiments(session: Session, account_id: int, now: datetime) -> int:
    """Store the decision of every running experiment of the account that the rule
    now decides; decisions stored. Commits nothing: the caller does. A step already
    decided is not counted again: its stored answer stands whatever the counts."""
    sequences = session.scalars(
        select(Sequence).where(Sequence.account_id == account_id,
                               Sequence.id.in_(select(Step.sequence_id).where(Step.type == "email")))
        .options(selectinload(Sequence.steps)))
    return sum(_reports(session, sequence, now, unsettled_only=True)[1] for sequence in sequences)


# Events a request folds itself before answering, when no other fold holds its
# account: a sequence just used reads its own events at once, while a backlog
# is left to the analytics pool and the answer says how old it is.
REQUEST_FOLD = 2_000
log = logging.getLogger(__name__)


def catch_up(session: Session, account_id: int, now: datetime) -> None:
    """Fold a small backlog of the account's events, unless a worker is folding
    them, and settle the experiments the new counts decide, as the pool's fold
    does: a request that folds the deciding events leaves the pool nothing to fold,
    so nothing else would store the decision the engine promotes. Commits; call
    before writing anything in the session's transaction.

    A fold that fails here (a sequence deleted under it, a lost connection) is
    rolled back whole and left to the analytics pool: the answer is then as of
    the last fold, and says so."""
    try:
        fold = fold_chunk(session, account_id, now, limit=REQUEST_FOLD, wait=False)
        if fold is not None and fold.events:
            settle_experiments(session, account_id, now)
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        log.warning("request fold failed; answering from the rollups as they are",
                    extra={"account_id": account_id, "error": repr(exc)})
