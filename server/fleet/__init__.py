"""The fleet: what devices send and what IT publishes to them.

`ingest` (enrolment, reports, heartbeats), `published` (requirements and
policies per group, as heartbeats hand them out) and `signoffs` (stored once
per record, and the sign-off report). `spreadsheet` makes CSV exports safe.
Functions take the caller's transaction; none opens its own.
"""
