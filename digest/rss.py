"""Write small RSS 2.0 documents: the demo's feeds, and the feeds that tests and benchmarks serve."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape, quoteattr

PODCAST_NAMESPACE = "https://podcastindex.org/namespace/1.0"  # identifiers in feeds, never fetched
ITUNES_NAMESPACE = "http://www.itunes.com/dtds/podcast-1.0.dtd"


@dataclass
class RssItem:
    """One ``<item>``.

    Attributes:
        date: Publication time; an aware datetime, or RFC 822 text written as is.
        url: The enclosure URL; none when empty.
        transcripts: ``(url, MIME type)`` of each ``<podcast:transcript>``.
        xml: Raw XML added inside the item, for quirks a test needs.
    """

    title: str
    guid: str = ""
    date: datetime | str | None = None
    url: str = ""
    type: str = "audio/mpeg"
    length: int = 1
    transcripts: tuple[tuple[str, str], ...] = ()
    xml: str = ""

    def to_xml(self) -> str:
        date = format_datetime(self.date) if isinstance(self.date, datetime) else self.date
        return (
            f"<item><title>{escape(self.title)}</title>"
            + (f'<guid isPermaLink="false">{escape(self.guid)}</guid>' if self.guid else "")
            + (f"<pubDate>{escape(date)}</pubDate>" if date else "")
            + "".join(f"<podcast:transcript url={quoteattr(u)} type={quoteattr(t)}/>" for u, t in self.transcripts)
            + (
                f'<enclosure url={quoteattr(self.url)} type={quoteattr(self.type)} length="{self.length}"/>'
                if self.url
                else ""
            )
            + self.xml
            + "</item>"
        )


def rss(title: str, items: list[RssItem], description: str = "", namespaces: str = "") -> str:
    """An RSS 2.0 document with the podcast namespace declared; ``namespaces`` adds more declarations."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:podcast="{PODCAST_NAMESPACE}" {namespaces}>'
        f"<channel><title>{escape(title)}</title>"
        + (f"<description>{escape(description)}</description>" if description else "")
        + "".join(i.to_xml() for i in items)
        + "</channel></rss>\n"
    )
