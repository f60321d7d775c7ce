"""Logs, metrics and error reporting shared by web and workers."""
