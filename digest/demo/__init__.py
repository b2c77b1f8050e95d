"""The bundled demo: one real day of the Changelog network as publisher-transcript feeds, and one spoken
show, turned into local RSS feeds in the data directory."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.config import Config
from digest.demo.markdown_cues import to_srt
from digest.errors import DemoError
from digest.models import Feed
from digest.rss import RssItem, rss
from digest.store import Store

DEMO_DIR = Path(__file__).resolve().parent


def shows() -> list[dict]:
    """The demo shows and their episodes, as written in ``shows.toml``."""
    return tomllib.loads((DEMO_DIR / "shows.toml").read_text(encoding="utf-8"))["show"]


def _item(ep: dict, out: Path, now: datetime) -> RssItem:
    """An episode dated ``hours_ago`` before ``now``: its audio as a file:// enclosure, or its published
    Markdown transcript as SRT cues written under ``out``."""
    item = RssItem(ep["title"], ep["guid"], now - timedelta(hours=ep["hours_ago"]))
    if "audio" in ep:
        item.url, item.length = (DEMO_DIR / ep["audio"]).as_uri(), (DEMO_DIR / ep["audio"]).stat().st_size
    else:
        srt = out / f"{ep['guid']}.srt"
        cues = to_srt((DEMO_DIR / ep["transcript"]).read_text(encoding="utf-8"))
        if not srt.exists() or srt.read_text(encoding="utf-8") != cues:
            srt.write_text(cues, encoding="utf-8")
        item.transcripts = ((srt.as_uri(), "application/x-subrip"),)
        item.xml = f"<link>{ep['link']}</link>"
    return item


SUBSCRIBER = "demo@localhost"


def check_home(config: Config, store: Store) -> None:
    """Raise :class:`DemoError` unless the data directory is empty or holds the demo alone, so the demo's
    feeds never join a user's own and its digest never reaches their subscribers."""
    demo = config.home.joinpath("demo").absolute().as_uri() + "/"
    feeds = [f.url for f in store.feeds() if not f.url.startswith(demo)]
    people = [s.email for s in store.subscribers(None) if s.email != SUBSCRIBER]
    if feeds or people:
        found = ", ".join([*(f"feed {u}" for u in feeds[:2]), *(f"subscriber {e}" for e in people[:2])])
        raise DemoError(
            f"{config.home} holds data of its own ({found}{', …' if len(feeds) + len(people) > 2 else ''}); "
            "the demo runs only in an empty data directory or its own, e.g. `digest --home ./digest-demo run --demo`"
        )


def install(config: Config, store: Store, now: datetime | None = None) -> list[Feed]:
    """Write the demo feeds into ``$DIGEST_HOME/demo/``, follow them and subscribe ``demo@localhost``.

    Raises :class:`DemoError` when the data directory holds anything but the demo (:func:`check_home`).
    """
    check_home(config, store)
    now = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    followed = []
    for show in shows():
        path = config.path("demo", f"{show['slug']}.xml")
        items = [_item(ep, path.parent, now) for ep in show["episode"]]
        document = rss(show["title"], items, show["description"])
        if not path.exists() or path.read_text(encoding="utf-8") != document:
            path.write_text(document, encoding="utf-8")
        followed.append(store.add_feed(path.absolute().as_uri())[0])
    store.add_subscriber(SUBSCRIBER)
    return followed
