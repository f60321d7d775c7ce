"""``/api/v1/subscribers``: the audience over HTTP."""
