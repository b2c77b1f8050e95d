"""Render a digest with jinja2: the email's HTML and text parts, and the web archive's pages."""

from __future__ import annotations

import functools
from datetime import date as Date
from urllib.parse import urlsplit

import jinja2

from digest.errors import DeliveryError
from digest.models import Digest


def clock(seconds: float) -> str:
    """``mm:ss`` or ``h:mm:ss`` for a time in the audio."""
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def host(url: str) -> str:
    """A URL's host alone: public pages never show a feed's path or query, which may hold a private token."""
    return urlsplit(url).hostname or ""


def method(digest: Digest) -> str:
    """One line on what picked the insights, for the foot of the email and the archive page."""
    if digest.method == "llm":
        return (
            f"Picked by {digest.method_note} from the shows' own words; every quote is checked against its transcript."
        )
    return "Picked by the offline ranker" + (f" ({digest.method_note})." if digest.method_note else ".")


@functools.cache
def environment() -> jinja2.Environment:
    """The template environment: autoescaped HTML, strict about undefined names."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("digest.templates", "."),
        autoescape=jinja2.select_autoescape(["html", "html.j2", "xml.j2"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["clock"] = clock
    env.filters["method"] = method
    env.filters["host"] = host
    return env


def long_date(iso: str) -> str:
    d = Date.fromisoformat(iso)
    return f"{d:%A}, {d.day} {d:%B %Y}"


def subject(template: str, digest: Digest) -> str:
    """The subject line from the ``mail.subject`` setting; never holds a line break."""
    text = template.replace("{date}", long_date(digest.date)).replace("{count}", str(len(digest.insights)))
    return " ".join(text.split())


def email_parts(
    digest: Digest,
    *,
    subject_line: str,
    recipient: str,
    unsubscribe_url: str,
    archive_url: str,
    base_url: str = "",
    preferences_url: str = "",
    feedback: list[tuple[str, str, str]] | None = None,
) -> tuple[str, str]:
    """The HTML and plain-text bodies of one subscriber's email; quotes without audio link to their segment
    on the archive's episode page under ``base_url``. ``feedback`` holds each insight's "more like this"
    and "less like this" links and its archive page with both ('' when it has none), and ``preferences_url``
    the reader's "Choose what you get" page."""
    env = environment()
    preheader = digest.insights[0].text if digest.insights else "Nothing new today."
    context = dict(
        digest=digest,
        subject=subject_line,
        recipient=recipient,
        unsubscribe_url=unsubscribe_url,
        archive_url=archive_url,
        base_url=base_url,
        date_long=long_date(digest.date),
        preheader=preheader,
        preferences_url=preferences_url,
        feedback=feedback or [],
    )
    try:
        return env.get_template("digest.html.j2").render(context), env.get_template("digest.txt.j2").render(context)
    except jinja2.TemplateError as exc:
        where = f"{exc.name}:{exc.lineno}" if isinstance(exc, jinja2.TemplateSyntaxError) else "the email template"
        raise DeliveryError(f"{where}: {exc}") from exc
