"""The audience: subscribers, their tags and attributes, and bulk imports.

Functions here take a SQLAlchemy ``Session`` (and a ``now``), never commit, and
never import Flask or Celery; ``web/subscribers`` and ``tasks/audience`` call them.
"""
