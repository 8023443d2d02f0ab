"""The server's branch of the error tree (drawn in `contract.errors`)."""

from __future__ import annotations

from contract.errors import HomeroomError


class ServerError(HomeroomError):
    """The server cannot do what was asked; the message says what to do next."""


class CommandError(ServerError):
    """A `homeroom-server` command was given something it cannot use."""


class DatabaseError(ServerError):
    """The database is missing, not migrated to this version, or unreachable."""


class RequestRefused(ServerError):
    """A signed request the server will not act on; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
