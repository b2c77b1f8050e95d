"""Send a digest to every subscriber exactly once: SMTP or the outbox folder, behind a send ledger."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import smtplib
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from pathlib import Path

from digest import render, signing
from digest.config import Config
from digest.errors import DeliveryError
from digest.models import DeliveryStatus, Digest, Subscriber, SubscriberStatus
from digest.readers import ReaderDay
from digest.store import Store

log = logging.getLogger(__name__)
_ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$%&'*+=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_TEMPORARY_RETRIES = 2


class TemporaryFailure(DeliveryError):
    """The server said try later (4xx) or went away: the message was not accepted."""


class PermanentFailure(DeliveryError):
    """The server refused the message for good (5xx)."""


class UncertainFailure(DeliveryError):
    """The message's final ``.`` went out but no answer came back: it may have arrived. Never retried."""


class SendingStopped(DeliveryError):
    """No message can go out now (the server cannot be reached, or refused our login): stop, retry later."""


def validate_address(address: str) -> str:
    """A clean email address, or :class:`DeliveryError` saying what is wrong with it."""
    value = address.strip()
    if any(ch in value for ch in "\r\n\t\0") or not _ADDRESS.match(value) or len(value) > 254 or ".." in value:
        raise DeliveryError(f"expected an email address like name@example.com, found {address!r}")
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


class Sender(ABC):
    """Hands a message to the world. Raises :class:`TemporaryFailure` or :class:`PermanentFailure`."""

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release any connection."""

    @abstractmethod
    def send(self, message: EmailMessage, date: str, ended: Callable[[], None] = lambda: None) -> None:
        """Deliver one message; ``ended`` runs once it may have arrived though no answer came yet
        (SMTP: the final ``.`` of DATA is written), so the ledger can say so."""

    def delivered(self, message: EmailMessage, date: str) -> bool | None:
        """Whether a message that a dead run was sending arrived: ``None`` when there is no knowing."""
        return None


class OutboxSender(Sender):
    """Writes ``$DIGEST_HOME/outbox/<date>/<address>.eml``, atomically."""

    def __init__(self, outbox: Path):
        self.outbox = outbox

    def _path(self, message: EmailMessage, date: str) -> Path:
        return self.outbox / date / f"{message['To']}.eml"

    def send(self, message: EmailMessage, date: str, ended: Callable[[], None] = lambda: None) -> None:
        final = self._path(message, date)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.tmp")
        try:
            tmp.write_bytes(message.as_bytes(policy=SMTP_POLICY))
            os.replace(tmp, final)  # all or nothing, so a dead run leaves a whole file or none
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise TemporaryFailure(f"cannot write {final}: {exc.strerror or exc}") from None

    def delivered(self, message: EmailMessage, date: str) -> bool | None:
        return self._path(message, date).exists()


class SmtpSender(Sender):
    """smtplib over one connection per run: STARTTLS, SSL or plain, with optional AUTH."""

    def __init__(self, config: Config):
        self.config = config
        self.conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        """A logged-in connection; :class:`SendingStopped` when there is none to be had."""
        cfg = self.config
        host, port, timeout, security = cfg["smtp.host"], cfg["smtp.port"], cfg["smtp.timeout"], cfg["smtp.security"]
        try:
            context = ssl.create_default_context()
            conn = (
                smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
                if security == "ssl"
                else smtplib.SMTP(host, port, timeout=timeout)
            )
            if security == "starttls":
                conn.starttls(context=context)
            if cfg["smtp.username"]:
                conn.login(cfg["smtp.username"], os.environ.get(cfg["smtp.password_env"], ""))
        except smtplib.SMTPAuthenticationError as exc:
            raise SendingStopped(
                f"SMTP server {host} refused the login of {cfg['smtp.username']!r} ({exc.smtp_code}); "
                f"check smtp.username and ${cfg['smtp.password_env']}"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SendingStopped(f"cannot reach SMTP server {host}:{port}: {exc or type(exc).__name__}") from None
        return conn

    def send(self, message: EmailMessage, date: str, ended: Callable[[], None] = lambda: None) -> None:
        """MAIL, RCPT and DATA by hand, so a failure is known to be before or after the final ``.`` went out:
        a server keeps no message whose final ``.`` never came, so before it everything may be retried."""
        if self.conn is None:
            self.conn = self._connect()
        conn = self.conn
        try:
            conn.ehlo_or_helo_if_needed()
            code, reply = conn.mail(message["From"])
            if code == 250:
                code, reply = conn.rcpt(message["To"])
            if code in (250, 251):
                code, reply = conn.docmd("DATA")
            if code != 354:
                self._fail(code, reply)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise TemporaryFailure(f"SMTP server {self.config['smtp.host']}: {exc or type(exc).__name__}") from None
        body = re.sub(rb"(?m)^\.", b"..", message.as_bytes(policy=SMTP_POLICY))
        try:
            conn.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        except (smtplib.SMTPException, OSError) as exc:
            raise self._gone(exc, TemporaryFailure, "before the message was complete", "it is sent again") from None
        ended()
        try:
            code, reply = conn.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            raise self._gone(
                exc,
                UncertainFailure,
                "after the message's final '.' was sent",
                "it may have arrived, so it is not resent",
            ) from None
        if code != 250:
            self._fail(code, reply)

    def delivered(self, message: EmailMessage, date: str) -> bool | None:
        """A row a dead run left ``sending`` never had its final ``.`` written (from there the row is
        ``uncertain``), so the server kept nothing: send it again."""
        return False

    def _gone(self, exc: Exception, failure: type[DeliveryError], when: str, so: str) -> DeliveryError:
        """The connection is closed; the error to raise for a server that went away ``when``."""
        self.close()
        return failure(f"SMTP server {self.config['smtp.host']} went away {when} ({exc or type(exc).__name__}); {so}")

    def _fail(self, code: int, reply: bytes | str) -> None:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        self.close()
        if 400 <= code < 500:
            raise TemporaryFailure(f"SMTP {code}: {text}")
        raise PermanentFailure(f"SMTP {code}: {text}")

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self.conn = None


def sender_for(config: Config) -> Sender:
    """SMTP when ``smtp.host`` is set, else the outbox folder."""
    return SmtpSender(config) if config.smtp_enabled else OutboxSender(config.home / "outbox")


def unsubscribe_url(config: Config, email: str) -> str:
    return config.url(f"unsubscribe/{signing.sign(config, 'unsubscribe', email)}")


def preferences_url(config: Config, email: str) -> str:
    """The signed, expiring link to a reader's preferences page ("Choose what you get")."""
    return config.url(f"preferences/{signing.sign_expiring(config, 'preferences', email)}")


def feedback_purpose(direction: str, date: str, position: int) -> str:
    """What a feedback link's token is bound to: ``more`` or ``less`` like one candidate of one date."""
    return f"feedback:{direction}:{date}:{position}"


def feedback_links(
    config: Config, email: str, date: str, position: int, pages: dict[tuple[str, int], int]
) -> tuple[str, str, str]:
    """A reader's "more like this" and "less like this" links for one candidate of the digest of ``date``, and
    (for a common pick, whose archive page ``pages`` gives by date and rank) that page with the same two
    buttons; else ''."""
    more, less = (signing.sign_expiring(config, feedback_purpose(d, date, position), email) for d in ("more", "less"))
    page_id = pages.get((date, position))
    page = f"insight/{page_id}?at={date}:{position}&more={more}&less={less}" if page_id else ""
    return (
        config.url(f"feedback/more/{date}/{position}/{more}"),
        config.url(f"feedback/less/{date}/{position}/{less}"),
        config.url(page) if page else "",
    )


def render_for(
    config: Config,
    digest: Digest,
    email: str,
    positions: list[tuple[str, int]] | None = None,
    pages: dict[tuple[str, int], int] | None = None,
    weekly: bool = False,
) -> tuple[str, str, str]:
    """Subject, HTML and text of one subscriber's email; ``positions`` (each insight's candidate date and
    position) give each insight its "more/less like this" links, and ``pages`` (the common picks' insight
    ids by date and rank, which is their position) a headline link to their archive page with the same
    buttons. A ``weekly`` reader's subject is ``mail.weekly_subject``."""
    subject = render.subject(config["mail.weekly_subject" if weekly else "mail.subject"], digest)
    html, text = render.email_parts(
        digest,
        subject_line=subject,
        recipient=email,
        unsubscribe_url=unsubscribe_url(config, email),
        archive_url=config.url(f"digest/{digest.date}"),
        base_url=config.url(""),
        preferences_url=preferences_url(config, email),
        feedback=[feedback_links(config, email, d, p, pages or {}) for d, p in positions or []],
    )
    return subject, html, text


def build_message(
    config: Config,
    digest: Digest,
    email: str,
    positions: list[tuple[str, int]] | None = None,
    pages: dict[tuple[str, int], int] | None = None,
    weekly: bool = False,
) -> EmailMessage:
    """One subscriber's ``multipart/alternative`` message, with RFC 8058 one-click unsubscribe headers;
    ``positions``, ``pages`` and ``weekly`` as for :func:`render_for`."""
    sender = validate_address(config["mail.from"])
    subject, html, text = render_for(config, digest, email, positions, pages, weekly)
    unsubscribe = unsubscribe_url(config, email)
    message = EmailMessage(policy=SMTP_POLICY)
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = email
    message["Date"] = formatdate(localtime=False, usegmt=True)
    tag = hashlib.sha256(f"{digest.date}:{email}".encode()).hexdigest()[:16]
    message["Message-ID"] = f"<digest-{digest.date}-{tag}@{sender.rsplit('@', 1)[1]}>"
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["List-Id"] = f"Daily podcast digest <digest.{sender.rsplit('@', 1)[1]}>"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send_confirmation(config: Config, email: str, link: str) -> None:
    """The double opt-in mail with its signed confirmation link (SMTP or the outbox)."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["Subject"] = "Confirm your daily podcast digest"
    message["From"] = validate_address(config["mail.from"])
    message["To"] = email
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message.set_content(
        f"Confirm your subscription to the daily podcast digest:\n\n{link}\n\n"
        f"The link is valid for {config['web.confirm_ttl']} hours. If you did not ask for this, ignore this mail.\n"
    )
    with sender_for(config) as sender:
        _send_with_retries(sender, message, "confirmations", config["fetch.backoff"])


@dataclass
class DeliveryReport:
    """Addresses by outcome of one delivery pass."""

    sent: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    deferred: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)
    weekly: list[str] = field(default_factory=list)  # weekly readers, whose mail goes out on readers.weekly_day
    stopped: str | None = None  # why sending stopped early (no server, refused login); the rest wait

    @property
    def all_failed(self) -> bool:
        """Mail was due and none of it went out."""
        return not self.sent and bool(self.deferred or self.failed or self.stopped)

    def summary(self) -> str:
        return (
            f"{len(self.sent)} sent, {len(self.already)} already had it, {len(self.deferred)} deferred, "
            f"{len(self.failed)} failed, {len(self.uncertain)} uncertain"
        ) + (f"; {len(self.weekly)} weekly readers wait for their day" if self.weekly else "")


def _send_with_retries(
    sender: Sender, message: EmailMessage, date: str, backoff: float, ended: Callable[[], None] = lambda: None
) -> None:
    """Send, retrying temporary failures (all of them before the final ``.``); ``ended`` as for :meth:`Sender.send`."""
    for attempt in range(_TEMPORARY_RETRIES + 1):
        try:
            sender.send(message, date, ended)
            return
        except TemporaryFailure:
            if attempt == _TEMPORARY_RETRIES:
                raise
            time.sleep(backoff * 2**attempt)


def deliver(
    config: Config,
    store: Store,
    digest: Digest,
    *,
    sender: Sender | None = None,
    only: list[Subscriber] | None = None,
    resend: bool = False,
    retry_failed: bool = False,
) -> DeliveryReport:
    """Send each active subscriber that has not had it their own digest of the day (see :mod:`digest.readers`):
    a daily reader's every day, a weekly reader's (the week's best) only when the digest's date falls on
    ``readers.weekly_day``, and then only when it holds an insight or ``mail.quiet_day_note`` is on.

    The ledger row goes to ``sending`` (committed) before the message leaves, to
    ``uncertain`` (committed) once SMTP's final ``.`` is written, and to ``sent`` on the
    server's answer. A row still ``sending`` at the next run means a run died
    before the message was complete (or in the instant between writing its end and
    recording so): the outbox can tell whether the file was written, and an SMTP server
    keeps no message without its final ``.``, so it is sent again. A row
    ``uncertain`` (the final ``.`` went out, no answer came) is not sent again. A failure
    before the final ``.`` is never uncertain: temporary ones are retried now and on the
    next run, permanent ones are recorded. When no message can go out at all (the server
    is unreachable or refuses the login) the pass stops, and every row not sent stays
    retryable. A message that cannot be built (a bad ``mail.from``, a template error) raises
    :class:`DeliveryError` before anything is sent; the digest stays stored.

    Args:
        only: Send to these subscribers instead of every active one.
        resend: Send again even when the ledger says it was sent (``digest send --resend``).
        retry_failed: Send again to those whose send failed for good (``digest send --retry-failed``).
    """
    report = DeliveryReport()
    subscribers = only if only is not None else store.subscribers(SubscriberStatus.ACTIVE)
    done = {DeliveryStatus.SENT, DeliveryStatus.UNCERTAIN} | (set() if retry_failed else {DeliveryStatus.FAILED})
    day = ReaderDay.load(config, store, digest)
    with sender or sender_for(config) as out:
        for sub in subscribers:
            prefs = store.preferences(sub.id)
            if not day.due(prefs):
                report.weekly.append(sub.email)
                continue
            row = store.delivery(digest.date, sub.id)
            mine, positions = day.digest_for(day.picks(store, sub.id))  # the reader's own, fixed once chosen
            weekly = prefs.frequency == "weekly"
            if weekly and not mine.insights and not config["mail.quiet_day_note"]:
                continue  # a week with nothing new for this reader
            # a bad setting or template stops here
            message = build_message(config, mine, sub.email, positions, day.pages, weekly)
            if row is not None and row.status == DeliveryStatus.SENDING and not resend:
                arrived = out.delivered(message, digest.date)
                if arrived is None:
                    why = "a run stopped while sending; not resent to avoid a duplicate"
                    store.record_delivery(digest.date, sub.id, DeliveryStatus.UNCERTAIN, error=why)
                    report.uncertain.append(sub.email)
                    continue
                if arrived:
                    store.record_delivery(digest.date, sub.id, DeliveryStatus.SENT)
                    report.already.append(sub.email)
                    continue
            elif row is not None and row.status in done and not resend:
                report.already.append(sub.email)
                continue
            store.record_delivery(
                digest.date, sub.id, DeliveryStatus.SENDING, message_id=message["Message-ID"], attempt=True
            )
            ended = functools.partial(
                store.record_delivery,
                digest.date,
                sub.id,
                DeliveryStatus.UNCERTAIN,
                error="the final '.' was written; no answer came",
            )
            try:
                _send_with_retries(out, message, digest.date, config["fetch.backoff"], ended)
            except UncertainFailure as exc:
                store.record_delivery(digest.date, sub.id, DeliveryStatus.UNCERTAIN, error=str(exc))
                report.uncertain.append(sub.email)
                continue
            except PermanentFailure as exc:
                store.record_delivery(digest.date, sub.id, DeliveryStatus.FAILED, error=str(exc))
                report.failed.append((sub.email, str(exc)))
                continue
            except DeliveryError as exc:  # temporary, or sending stopped: nothing left us, retry later
                store.record_delivery(digest.date, sub.id, DeliveryStatus.DEFERRED, error=str(exc))
                report.deferred.append((sub.email, str(exc)))
                if isinstance(exc, SendingStopped):
                    report.stopped = str(exc)
                    break
                continue
            store.record_delivery(digest.date, sub.id, DeliveryStatus.SENT)
            report.sent.append(sub.email)
    return report
