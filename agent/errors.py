"""The agent's branch of the error tree (drawn in `contract.errors`)."""

from __future__ import annotations

from contract.errors import HomeroomError


class AgentError(HomeroomError):
    """The agent cannot do what was asked; the message says what to do next."""


class BundleError(AgentError):
    """A diagnostic bundle cannot be read: not JSON, not a bundle, or from a newer agent."""


class EnrolmentError(AgentError):
    """Enrolment failed: the server refused the token or could not be reached."""


class NotEnrolled(AgentError):
    """A command needs this laptop's enrolment, and there is none in the state directory."""


class KeyStoreError(AgentError):
    """The device key cannot be made, stored or read."""


class OutboxError(AgentError):
    """The outbox file cannot be used; the message names the file and what to do."""


class InsecureServerAddress(AgentError):
    """The server address would let the network read and answer for the server (plain http elsewhere)."""


class OutboxNotUsable(OutboxError):
    """The outbox file is there but is not one this agent can use (damaged, foreign, from a newer agent):
    the service moves it aside for IT and starts a new one. `detail` is what is wrong, in short."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail
