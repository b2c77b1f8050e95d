"""The bundled demo: three short spoken shows, turned into local RSS feeds in the data directory."""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path

from digest.config import Config
from digest.models import Feed
from digest.rss import RssItem, rss
from digest.store import Store

DEMO_DIR = Path(__file__).resolve().parent


def shows() -> list[dict]:
    """The demo shows and their episodes, as written in ``shows.toml``."""
    return tomllib.loads((DEMO_DIR / "shows.toml").read_text(encoding="utf-8"))["show"]


def feed_xml(show: dict) -> str:
    """An RSS 2.0 document for one demo show, its enclosures as file:// URLs."""
    items = [
        RssItem(
            ep["title"],
            ep["guid"],
            datetime.fromisoformat(ep["date"].replace("Z", "+00:00")),
            (DEMO_DIR / ep["audio"]).as_uri(),
            length=(DEMO_DIR / ep["audio"]).stat().st_size,
        )
        for ep in show["episode"]
    ]
    return rss(show["title"], items, show["description"])


def install(config: Config, store: Store) -> list[Feed]:
    """Write the demo feeds into ``$DIGEST_HOME/demo/`` and follow them."""
    followed = []
    for show in shows():
        path = config.path("demo", f"{show['slug']}.xml")
        document = feed_xml(show)
        if not path.exists() or path.read_text(encoding="utf-8") != document:
            path.write_text(document, encoding="utf-8")
        followed.append(store.add_feed(path.as_uri())[0])
    return followed
