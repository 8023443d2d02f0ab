"""Homeroom's exceptions: one tree, so a caller can catch exactly what it can handle.

    HomeroomError                      every error Homeroom raises on purpose
    ├── ConfigError                    a file a district edits is wrong: file, line, fix (contract)
    │   └── PolicyError                an AUP document's header or text is wrong (contract.policy)
    ├── AgentError                     the agent cannot do what was asked (agent.errors)
    │   ├── BundleError                a diagnostic bundle cannot be read
    │   ├── EnrolmentError             the server refused or could not be reached at enrolment
    │   ├── NotEnrolled                a command needs an enrolment that is not there
    │   ├── KeyStoreError              the device key cannot be stored or read
    │   └── OutboxError                the outbox cannot take a record
    │       └── OutboxNotUsable        the file is damaged, foreign or newer: set aside, start anew
    └── ServerError                    the server cannot do what was asked (server.errors)
        ├── CommandError               a `homeroom-server` command was given something wrong
        ├── DatabaseError              the database is missing, behind, or unreachable
        └── RequestRefused             an agent request is refused, with its HTTP status

The agent's and the server's branches live in their own `errors` modules, since
this package imports neither end.
"""

from __future__ import annotations


class HomeroomError(Exception):
    """Base of every error Homeroom raises on purpose; anything else is a bug."""


class ConfigError(HomeroomError):
    def __init__(self, file: str, line: int | None, message: str, fix: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        self.fix = fix
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}. Fix: {fix}")
