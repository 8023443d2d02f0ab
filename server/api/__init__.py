"""JSON APIs. For agents, version 1 (`/api/v1/...`): enrolment with a token, then signed requests.

One router per resource (`enrolment`, `reports`, `heartbeat`, `signoffs`); `signed`
holds the path every signed request shares; `schemas` the request and answer bodies.
"""
