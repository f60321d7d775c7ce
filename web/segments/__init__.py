"""``/api/v1/segments``: saved audience filters over HTTP."""
