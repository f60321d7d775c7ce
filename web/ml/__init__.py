"""``/api/v1/ml``: training runs (models) and the subscribers' scores."""
