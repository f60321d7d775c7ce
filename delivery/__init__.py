"""Getting outbox messages to subscribers: building, tracking, transports, outcomes."""
