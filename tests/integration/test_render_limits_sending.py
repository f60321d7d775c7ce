"""The send path renders each email under the same limits as a preview: a template
that would build a huge value fails its own message with the reason, without the
send worker building it, and the rest of its batch goes out."""
from __future__ import annotations

import pytest

from models import Message, db
from tests.support.memory import allocation_peak
from tests.support.sending import STEP, queue_emails, send_in_process

PEAK_BYTES = 64 * 2**20


@pytest.mark.parametrize("source", ["{{ lipsum(1000000) }}", "{{ range(100000)|join('x' * 10000) }}",
                                    "{{ [('x' * 100000)] * 3000 }}"])
def test_an_email_whose_template_would_build_a_huge_value_fails_alone_and_the_batch_goes_out(smtp, source):
    good = queue_emails(2)
    [bad] = queue_emails(1, [{**STEP, "html": f"<p>{source}</p>"}])
    outcome, peak = allocation_peak(lambda: send_in_process(good + [bad]))
    assert outcome == {"sent": 2}
    with db.session_scope() as s:
        failed = s.get(Message, bad)
        assert failed.status == "failed" and "cannot render" in failed.error and "too large" in failed.error
    assert len(smtp.handler.received) == 2
    assert peak < PEAK_BYTES
