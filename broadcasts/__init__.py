"""Broadcasts: one-off emails to a segment or a topic (models.broadcast).

``validation`` checks what a client sends, ``lifecycle`` moves a broadcast
through draft, scheduled and cancelled, ``sending`` fixes the audience and queues
its messages into the outbox (each member once, resumable), ``send_times`` says
when each member's message is due, ``subject_test`` picks a test's winner, and
``report`` counts what happened per variant. Functions take a Session and a
``now`` and never commit, except ``sending.run_due``, whose steps each commit with
their bookkeeping; ``web/broadcasts`` and ``tasks/broadcasts`` call them.
"""
