"""podcastparser's fixture feeds (tests/data/peers, ISC licence, see its README.md) as a conformance table:
per fixture, the episodes and their title, GUID, enclosure, date and duration against the peer's expected output.

Deliberate differences, and why:

* Items with neither audio nor a transcript are skipped: there is nothing to transcribe.
* A GUID is kept as written: podcastparser resolves a relative-looking GUID against the feed URL (and falls
  back to the enclosure URL), so it would change when a feed moves.
* Of several enclosures, the first audio or video one is the episode's audio; podcastparser lists all.
* ``max_episodes.rss``: podcastparser's own test caps the count with an option; there is no cap here.
* ``no_title_multi_enclosure.rss``: podcastparser drops an item with no title and several enclosures; it has
  audio, so it is kept here, titled after its audio file.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from digest.feeds import parse_feed
from digest.rss import PODCAST_NAMESPACE

PEERS = Path(__file__).resolve().parent / "data" / "peers" / "podcastparser"
FIELDS = ("title", "guid", "enclosure", "published", "duration")


def _epoch(iso: str | None) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) if iso else 0


def compare(rss: Path) -> tuple[bool, dict[str, list[bool]]]:
    """Whether the episode counts agree, and per field whether each episode agrees."""
    expected = [e for e in json.loads(rss.with_suffix(".json").read_text())["episodes"] if e["enclosures"]]
    got = parse_feed(rss.read_bytes(), 1, f"file://tests/data/{rss.name}").episodes
    fields: dict[str, list[bool]] = {f: [] for f in FIELDS}
    for ours, theirs in zip(sorted(got, key=lambda e: e.title), sorted(expected, key=lambda e: e["title"])):
        guid = ours.guid or ""
        fields["title"].append(ours.title == theirs["title"])
        fields["guid"].append(
            guid == theirs["guid"] or (bool(guid) and theirs["guid"].endswith("/" + guid)) or not guid
        )
        fields["enclosure"].append(ours.enclosure_url in {e["url"] for e in theirs["enclosures"]})
        fields["published"].append(_epoch(ours.published) == theirs["published"])
        fields["duration"].append(int(ours.duration or 0) == theirs["total_time"])
    return len(got) == len(expected), fields


def agreement() -> dict[str, float]:
    counts, fields = [], {f: [] for f in FIELDS}
    for rss in sorted(PEERS.glob("*.rss")):
        same_count, per_field = compare(rss)
        counts.append(same_count)
        for f in FIELDS:
            fields[f] += per_field[f]
    return {"episode count": sum(counts) / len(counts)} | {f: sum(v) / len(v) for f, v in fields.items()}


def test_agreement_with_podcastparser_on_its_own_fixtures():
    rates = agreement()
    assert len(list(PEERS.glob("*.rss"))) == 70
    assert rates["episode count"] >= 0.95 and all(rates[f] >= 0.9 for f in FIELDS), rates


@pytest.mark.parametrize("name", ["mediarss", "relative", "empty", "itunes_owner", "language"])
def test_shapes_that_once_lost_audio_or_were_refused(name):
    same_count, fields = compare(PEERS / f"{name}.rss")
    assert same_count and all(all(v) for v in fields.values()), (name, fields)


def test_epoch_dates_and_relative_links_resolve_and_guids_stay_as_written():
    body = (
        f'<rss xmlns:podcast="{PODCAST_NAMESPACE}"><channel><title>T</title><item><title>E</title>'
        '<guid>shows/7</guid><pubDate>1633704259</pubDate><enclosure url="a.mp3" type="audio/mpeg"/>'
        '<podcast:transcript url="t/a.srt" type="application/x-subrip"/></item></channel></rss>'
    ).encode()
    [ep] = parse_feed(body, 1, "https://example.com/pod/feed.xml").episodes
    assert ep.published == "2021-10-08T14:44:19Z" and ep.enclosure_url == "https://example.com/pod/a.mp3"
    assert ep.transcripts[0].url == "https://example.com/pod/t/a.srt"
    assert ep.guid == "shows/7"  # as written, not resolved against the feed's URL


def test_a_utf16_feed_keeps_every_transcript_link():
    document = (
        f'<?xml version="1.0" encoding="UTF-16"?>\n<rss xmlns:podcast="{PODCAST_NAMESPACE}">'
        "<channel><title>Ünïcode</title><item><title>Épisode</title><guid>e1</guid>"
        '<enclosure url="https://example.com/e1.mp3" type="audio/mpeg"/>'
        '<podcast:transcript url="https://example.com/e1.vtt" type="text/vtt"/>'
        '<podcast:transcript url="https://example.com/e1.json" type="application/json"/>'
        "</item></channel></rss>"
    )
    parsed = parse_feed(document.encode("utf-16"), 1, "https://example.com/feed.xml")
    [ep] = parsed.episodes
    assert parsed.title == "Ünïcode" and ep.title == "Épisode" and ep.guid == "e1"
    assert [t.type for t in ep.transcripts] == ["application/json", "text/vtt"]  # both, best first
