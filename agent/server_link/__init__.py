"""The agent's link to the server, run by the root service only.

`keys` (the Ed25519 device key), `outbox` (the durable queue every record goes
through first), `sender` (drains it with backoff) and `client` (enrolment and
the signed HTTP transport). The user's side (`agent.desktop`) never imports
this package: it holds no secret and talks to the service only through the hand-off.
"""
