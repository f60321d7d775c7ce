"""``/api/v1/ai/drafts``: AI drafts, drafted on the ai pool and applied by a person."""
