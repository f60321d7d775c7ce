"""The enrollment state machine: step definitions and their validation, a
sequence's lifecycle, enrollment, and (in the engine modules) walking the steps.

Domain code: takes a session and a ``now``, never commits, never imports Flask or Celery.
"""
