"""Alert e-mail over SMTP: one message per alert raised or resolved, bodies scrubbed of secrets."""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from zakaz_common.alerts import Alert
from zakaz_common.errors import ZakazError
from zakaz_common.redact import scrub
from zakaz_common.timeutil import to_msk

from zakaz_health.settings import SMTPS_PORT, AlertSettings


class MailError(ZakazError):
    """The SMTP server could not be reached or refused the message; the message says why."""

    transient = True


def compose(alert: Alert, settings: AlertSettings, *, resolved: bool) -> EmailMessage:
    """The e-mail for an alert raised (or, with `resolved`, for its resolution)."""
    kind = alert.kind.replace("_", " ")
    msg = EmailMessage()
    if resolved:
        msg["Subject"] = f"[zakaz] resolved: {alert.job} {kind}"
        when = f" at {to_msk(alert.resolved_at):%Y-%m-%d %H:%M} MSK" if alert.resolved_at else ""
        lead = f"Resolved{when}: {alert.job} {kind}. The problem below no longer holds."
    else:
        msg["Subject"] = f"[zakaz] {alert.severity}: {alert.job} {kind}"
        lead = f"Alert: {alert.job} {kind} ({alert.severity})."
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="zakaz")
    body = (
        f"{lead}\n\n"
        f"{alert.message}\n\n"
        f"Alert id {alert.alert_id}, raised {to_msk(alert.created_at):%Y-%m-%d %H:%M} MSK.\n"
        "Every source's state and the open alerts: the health service's status page (GET /).\n"
    )
    msg.set_content(scrub(body))
    return msg


@contextmanager
def smtp_session(settings: AlertSettings) -> Iterator[smtplib.SMTP]:
    """An SMTP connection, upgraded with STARTTLS when offered, logged in when a user is set."""
    if not settings.smtp_host:
        raise MailError("SMTP_HOST is not set")
    host, port = settings.smtp_host, settings.smtp_port
    context = ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if port == SMTPS_PORT:
            smtp = smtplib.SMTP_SSL(
                host, port, timeout=settings.smtp_timeout_seconds, context=context
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=settings.smtp_timeout_seconds)
        with smtp:
            smtp.ehlo()
            encrypted = port == SMTPS_PORT
            if not encrypted and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
                encrypted = True
            if settings.smtp_user:
                if not encrypted and not _loopback(host):
                    raise MailError(
                        f"SMTP server {host}:{port} does not offer STARTTLS; refusing to send "
                        "SMTP_PASSWORD unencrypted (use port 465 or a server with STARTTLS)"
                    )
                password = (
                    settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                )
                smtp.login(settings.smtp_user, password)
            yield smtp
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"alert e-mail via {host}:{port} failed: {scrub(str(exc))[:300]}") from exc


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
