"""Celery tasks: thin. Take ids, open a session, call one domain function, commit.

One module per workload area; the area is the first part of each task's name and
decides its queue (celeryconfig.task_routes).
"""
