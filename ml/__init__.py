"""Predictive layer: features from events, churn risk, engagement and learned send times."""
