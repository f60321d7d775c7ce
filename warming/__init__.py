"""IP warming: how much a new sending IP or domain may send each day, and when it
may send more.

The pure core, in the order a day uses it:

- ``schedule``: the planned day-by-day volumes (geometric, linear or a custom table).
- ``mailbox``: recipient domains sorted into mailbox-provider groups, and the day's
  cap split between them, because Gmail, Yahoo and Microsoft each judge us alone.
- ``spread``: how much of a cap may have gone out by a given local time, so a day's
  mail is spread over the sending hours instead of burst at midnight.
- ``health``: one group's recent traffic judged against the plan's thresholds.
- ``ramp``: the state machine that turns a verdict into the next day's level.
- ``plan``: the settings of a plan validated together, and the daily step for all groups.
- ``plot``: planned vs actual volume and the rates as SVG.

Nothing here reads a clock, a database or the network; callers pass ``today`` and
traffic counts in, and store the returned states and adjustments themselves.
"""
