"""Homeroom agent: checks a laptop against the district's Acceptable Use Policy."""

__version__ = "0.1.0"
