"""The home page: what the server is, and where to look until the console's pages exist."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

HOME_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Homeroom</title>
<style>
body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;line-height:1.5;padding:0 1rem}
</style>
</head><body>
<h1>Homeroom server</h1>
<p>The server is running and laptops can enrol and report to it.</p>
<p>The web console for compliance, sign-off and lost-device reports is being built. Until then,
list devices with <code>homeroom-server devices</code>; the agent API is described at
<a href="/docs">/docs</a>.</p>
</body></html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home() -> str:
    return HOME_PAGE
