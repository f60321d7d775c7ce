"""Sequences API: definitions, lifecycle transitions, enrollment."""
