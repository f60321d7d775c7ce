"""Account-wide analytics API: attribution of conversions to sequence steps."""
