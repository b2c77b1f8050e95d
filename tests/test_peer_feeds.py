"""The peers' fixture feeds (tests/data/peers, see its README.md) as conformance tables.

podcastparser's (ISC): per fixture, the episodes and their title, GUID, enclosure, date and duration against
the peer's expected output. partytime's (MIT) come without expected output, so each is checked against the
document itself: every item with audio is one episode, no two merged, with the document's title, GUID and audio.

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

import html
import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from digest.feeds import parse_feed, store_episodes
from digest.rss import ITUNES_NAMESPACE, PODCAST_NAMESPACE

PEERS = Path(__file__).resolve().parent / "data" / "peers" / "podcastparser"
PARTYTIME = PEERS.parent / "partytime"
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


def document_items(text: str) -> list[dict[str, str]]:
    """Each ``<item>`` with audio, read from the raw XML (two real partytime feeds are not well-formed XML)."""
    found = []
    for item in re.findall(r"<item\b.*?</item>", text, re.DOTALL):
        audio = re.search(r'<enclosure\b[^>]*\burl\s*=\s*["\']([^"\']+)', item)
        if not audio:
            continue

        def tag(name: str, item: str = item) -> str:
            m = re.search(rf"<{name}\b[^>]*>(.*?)</{name}>", item, re.DOTALL)
            value = re.sub(r"^<!\[CDATA\[(.*)\]\]>$", r"\1", m.group(1).strip(), flags=re.DOTALL) if m else ""
            return " ".join(html.unescape(value).split())

        found.append({"title": tag("itunes:title") or tag("title"), "guid": tag("guid"), "url": audio.group(1)})
    return found


@pytest.mark.parametrize("path", sorted(PARTYTIME.rglob("*.xml")), ids=lambda p: p.name)
def test_partytime_fixtures_give_one_episode_per_item_with_the_documents_fields(path, store):
    text = path.read_text(encoding="utf-8")
    expected = document_items(text)
    url = f"https://feeds.example.com/{path.name}"
    parsed = parse_feed(path.read_bytes(), 1, url)
    assert len(parsed.episodes) == len(expected)
    for ours, theirs in zip(parsed.episodes, expected):
        assert ours.title == theirs["title"]
        assert (ours.guid or "") == theirs["guid"]
        assert ours.enclosure_url == html.unescape(theirs["url"]).strip()
    feed, _ = store.add_feed(url)
    assert len(store_episodes(store, feed, parsed)) == len(expected)  # none merged, none lost


def test_partytime_suite_is_vendored_whole():
    assert len(list(PARTYTIME.rglob("*.xml"))) == 19


def test_an_undeclared_shift_jis_feed_is_read_as_japanese():
    document = (
        '<?xml version="1.0"?>\n<rss version="2.0"><channel><title>ニュースの時間</title>'
        "<item><title>第12回：半導体の話</title><guid>jp-12</guid>"
        '<enclosure url="https://cdn.example.com/jp12.mp3" type="audio/mpeg"/></item>'
        "<item><title>第11回：電池の話です。リチウムとナトリウム</title><guid>jp-11</guid>"
        '<enclosure url="https://cdn.example.com/jp11.mp3" type="audio/mpeg"/></item></channel></rss>'
    )
    parsed = parse_feed(document.encode("shift_jis"), 1, "https://feeds.example.com/jp.xml")
    assert parsed.title == "ニュースの時間"
    assert [e.title for e in parsed.episodes] == ["第12回：半導体の話", "第11回：電池の話です。リチウムとナトリウム"]


@pytest.mark.parametrize(
    "written,expected",
    [
        ("Tue, 03 Nov 2020 24:28:20 CST", "2020-11-04T06:28:20Z"),  # hour 24: midnight of the next day
        ("Mon, 02 Mar 2015 15:12:352 +0000", "2015-03-02T15:12:35Z"),  # a digit too many in the seconds
        ("Fri, 27 Nov 2026 06:00:00 GMT", "2026-11-27T06:00:00Z"),
        ("sometime last week", None),
    ],
)
def test_broken_dates_are_recovered_as_podcast_apps_read_them(written, expected):
    body = (
        f"<rss><channel><title>T</title><item><title>E</title><guid>g</guid><pubDate>{written}</pubDate>"
        '<enclosure url="https://cdn.example.com/e.mp3" type="audio/mpeg"/></item></channel></rss>'
    ).encode()
    [ep] = parse_feed(body, 1, "https://feeds.example.com/feed.xml").episodes
    assert ep.published == expected


def test_itunes_title_is_the_title_shown_and_line_breaks_go():
    body = (
        f'<rss xmlns:itunes="{ITUNES_NAMESPACE}"><channel><title>T</title>'
        "<item><title>S2 E10 -\n  Inside the episode</title><itunes:title>Inside the episode</itunes:title>"
        '<guid>g1</guid><enclosure url="https://cdn.example.com/1.mp3" type="audio/mpeg"/></item>'
        "<item><title>Plain\n title</title><guid>g2</guid>"
        '<enclosure url="https://cdn.example.com/2.mp3" type="audio/mpeg"/></item></channel></rss>'
    ).encode()
    assert [e.title for e in parse_feed(body, 1, "https://feeds.example.com/f.xml").episodes] == [
        "Inside the episode",
        "Plain title",
    ]


def test_relative_links_resolve_against_xml_base_of_the_channel_and_the_item():
    body = (
        f'<rss xmlns:podcast="{PODCAST_NAMESPACE}"><channel xml:base="https://media.example.org/shows/">'
        '<title>T</title><item><title>E</title><guid>e</guid><enclosure url="audio/e.mp3" type="audio/mpeg"/>'
        '<podcast:transcript url="t/e.srt" type="application/x-subrip"/></item>'
        '<item xml:base="/x/"><title>F</title><guid>f</guid><enclosure url="f.mp3" type="audio/mpeg"/></item>'
        "</channel></rss>"
    ).encode()
    e, f = parse_feed(body, 1, "https://feeds.example.com/pod/feed.xml").episodes
    assert e.enclosure_url == "https://media.example.org/shows/audio/e.mp3"
    assert e.transcripts[0].url == "https://media.example.org/shows/t/e.srt"
    assert f.enclosure_url == "https://media.example.org/x/f.mp3"
