"""Outgoing webhook calls made by webhook steps: guard, sign, deliver, retry."""
