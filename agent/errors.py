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
