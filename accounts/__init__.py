"""Accounts (tenants) and API keys."""
