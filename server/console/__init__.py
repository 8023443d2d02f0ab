"""The IT web console: pages for people, over the same queries as the CLI.

Signing in (`sign_in`, `sessions`, `lockout`, `csrf`), who sees what (`roles`, `accounts`),
the pages (`pages`: overview, audit), the headers every answer carries (`headers`) and the
API documentation served without a CDN (`docs`). Templates are Jinja2 with autoescape on.
"""
