"""Beat schedules: data, not code. Every entry is safe to run twice or skip once."""
