"""``/api/v1/jobs``: background jobs a client polls (subscriber imports)."""
