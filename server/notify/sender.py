"""Sending what the outbox holds: e-mail over SMTP (stdlib smtplib) and webhooks over HTTP(S)
(stdlib urllib), each attempt under a lease, a failure tried again after a doubling backoff.

Blocking, and run off the event loop (server/notify/background.py); it holds no database
connection while it talks to a mail server or a webhook, so a slow one never holds a lock.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine

from server.config_file import ServerConfig, SmtpConfig
from server.notify import messages, outbox

log = logging.getLogger("homeroom.notify")


class DeliveryFailed(Exception):
    """The recipient's server did not take it; the message says why (kept, shown to IT)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is a misconfiguration, not a place to post the district's data to."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def send_email(smtp: SmtpConfig, message: Any) -> None:
    context = ssl.create_default_context()
    try:
        if smtp.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=context
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=context)
            if smtp.username:
                client.login(smtp.username, smtp.password)
            refused = client.send_message(message)
            if refused:
                raise DeliveryFailed(f"the mail server refused {', '.join(refused)}")
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise DeliveryFailed(f"SMTP {smtp.host}:{smtp.port}: {exc}") from None


def post_webhook(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    if not url.startswith(("https://", "http://")):  # server.toml allows only these; never file:
        raise DeliveryFailed(f"webhook {url} is not an http(s) address")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            answer.read(1024)
            if not 200 <= answer.status < 300:
                raise DeliveryFailed(f"webhook {url} answered {answer.status}")
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"webhook {url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryFailed(f"webhook {url}: {getattr(exc, 'reason', exc)}") from None


class NotificationSender:
    """Drains the outbox: takes what is due, sends it, marks it sent or failed."""

    def __init__(
        self,
        engine: Engine,
        config: ServerConfig,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        domain: str | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self.domain = domain or socket.getfqdn() or "homeroom.invalid"
        self._secrets = {r.webhook: r.secret for r in config.notify.recipients if r.webhook}

    def deliver(self, taken: outbox.Taken) -> None:
        payload = taken.payload
        if taken.channel == "email":
            smtp = self.config.smtp
            if smtp is None:
                raise DeliveryFailed("no [smtp] section in server.toml")
            made = datetime.fromisoformat(payload.get("at") or self.clock().isoformat())
            message = messages.email_message(
                payload, taken.id, smtp.sender, taken.recipient, made, self.domain
            )
            send_email(smtp, message)
            return
        secret = self._secrets.get(taken.recipient)
        if secret is None:
            raise DeliveryFailed(f"webhook {taken.recipient} is no longer a [[recipient]] in server.toml")
        body = messages.webhook_body(payload, taken.id)
        headers = messages.webhook_headers(secret, int(time.time()), body, taken.id)
        post_webhook(taken.recipient, body, headers, timeout=30.0)

    def run_once(self) -> int:
        """Everything due now, one at a time; the number sent."""
        notify = self.config.notify
        sent = 0
        for notification_id in outbox.due(self.engine, self.clock()):
            taken = outbox.take(self.engine, notification_id, self.clock(), notify.lease_seconds)
            if taken is None:
                continue
            try:
                self.deliver(taken)
            except DeliveryFailed as exc:
                again = outbox.mark_failed(
                    self.engine,
                    taken,
                    str(exc),
                    self.clock(),
                    notify.retry_first_seconds,
                    notify.retry_max_seconds,
                )
                log.warning(
                    "notification %s to %s failed (attempt %s): %s; trying again at %s",
                    taken.id,
                    taken.recipient,
                    taken.attempts,
                    exc,
                    again.isoformat(timespec="seconds"),
                )
                continue
            outbox.mark_sent(self.engine, taken.id, self.clock())
            sent += 1
        return sent
