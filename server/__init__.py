"""Homeroom server: comes with the server issue; importable so packaging and tests see it."""
