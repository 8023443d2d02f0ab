"""The IT web console: pages for people, over the same queries as the CLI.

Today only the home page; the console issue builds sign-in, roles and the fleet pages here.
"""
