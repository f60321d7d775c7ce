"""``/api/v1/event-subscriptions``: outgoing webhooks for what happens."""
