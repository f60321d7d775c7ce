"""Broadcasts: one-off campaigns to a segment or a topic, with subject tests, sent
through the same outbox as sequences."""
