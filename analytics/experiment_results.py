"""A sequence's experiments: for each email step with an ``experiment`` option, the
decision (``analytics.experiments``) on its variants' rollup counts, with the
rollups' ``as_of`` so a reader knows which events it stands on.

``sent`` is a variant's messages with a ``sent`` event and ``successes`` its messages
with at least one of the experiment's metric (``opened``, ``clicked``, ``converted``),
each message once, as ``analytics.sequence_stats`` counts them. Decisions are not
stored here: every answer is the rule applied to the counts as they are now.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from analytics.experiments import experiment_report
from analytics.sequence_stats import step_counts
from models import Sequence


def experiment_results(session: Session, sequence: Sequence) -> list[dict[str, Any]]:
    """One experiment object per email step with an experiment, in step order; the
    variants in the step's order (the first is the control)."""
    counts = step_counts(session, sequence)
    rows = {(row["step_id"], row["variant"]): row for row in counts["steps"]}
    results = []
    for step in sorted(sequence.steps, key=lambda s: s.position):
        options = step.config.get("experiment") if step.type == "email" else None
        names = [v.get("name") for v in step.config.get("variants") or []]
        if not options or len(names) < 2:
            continue
        variants = []
        for name in names:
            row = rows.get((step.id, name)) or {"sent": 0, options["metric"]: 0}
            # An open or click can be folded before its message's ``sent`` event, or
            # come without one (imported history, a provider's webhook racing our
            # send); a message opened was sent, and the rule needs successes <= sent.
            successes = row[options["metric"]]
            variants.append({"name": name, "sent": max(row["sent"], successes), "successes": successes})
        results.append({**experiment_report(step.position, options, variants), "as_of": counts["as_of"]})
    return results
