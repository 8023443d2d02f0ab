"""The IT web console: pages for people, over the same data as the CLI.

Signing in (`sign_in`, `sessions`, `lockout`, `form_secret`), who sees what (`roles`,
`accounts`, `users_cli`), the pages (`pages`: overview with `trend`, devices, audit, users; their
queries in `fleet_views` and `audit_log`), the headers every answer carries (`headers`) and the
API documentation served without a CDN (`docs`). Templates are Jinja2 with autoescape on.
"""
