"""What runs as the logged-in user: the tray, the sign-off dialog and the read-only panels.

It talks to the root service only through the hand-off (`handoff`: status.json and
the published policies come in, one file per record goes out through the inbox)
and never imports `agent.server_link`: a student's process holds no key.
"""
