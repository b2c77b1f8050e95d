"""Every real feed in the corpus parses to an expected outcome; each MANIFEST edge case has a named test."""

from __future__ import annotations

import re

import pytest
from conftest import CORPUS

from digest.feeds import identity_keys, normalize_enclosure_url, parse_feed, store_episodes
from digest.models import Status

# file -> (episodes feedparser recovers with media, distinct episodes once stored)
EXPECTED = {
    "feedparser_atom10.xml": (1, 1),
    "partytime_animated-no-agenda.xml": (20, 20),
    "partytime_dk-podcast.xml": (59, 59),
    "partytime_no-agenda.xml": (29, 29),
    "partytime_pc20rss.xml": (56, 56),
    "partytime_sentimental-garbage.xml": (138, 138),
    "partytime_themnshow.xml": (54, 54),
    "podcastns_example.xml": (3, 3),
    "radiofeed_rss_bad_pub_date.xml": (75, 74),
    "radiofeed_rss_bad_urls.xml": (3, 3),
    "radiofeed_rss_invalid_duration.xml": (450, 450),
    "radiofeed_rss_missing_enc_length.xml": (71, 71),
    "radiofeed_rss_mock_catalan.xml": (350, 350),
    "radiofeed_rss_new_feed_url.xml": (1, 1),
    "radiofeed_rss_use_link_ids.xml": (373, 373),
}


def new_feed_url_in(name: str) -> str:
    """The <itunes:new-feed-url> a corpus feed declares, read from its raw text."""
    text = (CORPUS / "feeds" / name).read_text(encoding="utf-8", errors="replace")
    return re.search(r"<itunes:new-feed-url>\s*([^<\s]+)", text).group(1)


def parse(name: str):
    return parse_feed((CORPUS / "feeds" / name).read_bytes(), 1, f"http://feeds.test/{name}")


def test_every_corpus_feed_is_listed():
    assert sorted(p.name for p in (CORPUS / "feeds").glob("*.xml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_feed_parses_and_stores_expected_episodes(name, store, config):
    parsed = parse(name)
    assert len(parsed.episodes) == EXPECTED[name][0]
    assert parsed.title
    feed, _ = store.add_feed(f"http://feeds.test/{name}")
    assert len(store_episodes(store, feed, parsed)) == EXPECTED[name][1]
    assert len(store.episodes(feed_id=feed.id)) == EXPECTED[name][1]
    assert store_episodes(store, feed, parse(name)) == []  # the same document again adds nothing


def test_leading_newline_before_xml_declaration_is_recovered():
    parsed = parse("partytime_sentimental-garbage.xml")
    assert len(parsed.episodes) == 138


def test_undefined_entity_is_recovered():
    parsed = parse("partytime_no-agenda.xml")
    assert parsed.title == "No Agenda"


def test_bare_ampersand_is_recovered_and_new_feed_url_is_read():
    parsed = parse("radiofeed_rss_new_feed_url.xml")
    assert len(parsed.episodes) == 1
    assert parsed.new_feed_url == new_feed_url_in("radiofeed_rss_new_feed_url.xml")


def test_broken_pub_dates_are_recovered_missing_ones_still_ingest_and_duplicate_guids_stay_visible():
    parsed = parse("radiofeed_rss_bad_pub_date.xml")
    assert sum(e.published is None for e in parsed.episodes) == 2  # the two empty dates
    dates = {e.published for e in parsed.episodes}
    assert {"2009-03-08T06:28:20Z", "2013-04-28T21:12:35Z"} <= dates  # "24:28:20 CST", "15:12:352 CST"
    guids = [e.guid for e in parsed.episodes]
    assert len(guids) - len(set(guids)) == 1


def test_feed_without_guids_keys_on_enclosure_url():
    parsed = parse("radiofeed_rss_use_link_ids.xml")
    assert all(e.guid is None for e in parsed.episodes)
    assert all(identity_keys(e)[0].startswith("url:") for e in parsed.episodes)


def test_chrt_tracking_prefix_is_stripped_from_identity():
    parsed = parse("radiofeed_rss_bad_urls.xml")
    assert all("chrt.fm" in e.enclosure_url for e in parsed.episodes)
    assert all(normalize_enclosure_url(e.enclosure_url).startswith("traffic.megaphone.fm/") for e in parsed.episodes)


def test_op3_prefix_is_stripped_from_identity():
    parsed = parse("partytime_themnshow.xml")
    urls = [normalize_enclosure_url(e.enclosure_url) for e in parsed.episodes if "op3.dev" in e.enclosure_url]
    assert urls and not any("op3.dev" in u for u in urls)


def test_iso_8859_1_feed_is_decoded():
    titles = [e.title for e in parse("radiofeed_rss_mock_catalan.xml").episodes]
    assert "Jubilació: aspectes psicològics" in titles


def test_every_transcript_link_is_read_from_raw_xml():
    episodes = parse("podcastns_example.xml").episodes
    counts = sorted(len(e.transcripts) for e in episodes)
    assert counts[-1] == 2  # feedparser alone keeps only one of these
    both = max(episodes, key=lambda e: len(e.transcripts))
    assert [t.type for t in both.transcripts] == ["text/vtt", "text/plain"]  # best format first


def test_video_enclosures_without_duration_are_ingested():
    episodes = parse("partytime_animated-no-agenda.xml").episodes
    assert all(e.enclosure_type == "video/mp4" for e in episodes)


def test_item_without_guid_in_a_guid_feed_is_kept():
    episodes = parse("partytime_dk-podcast.xml").episodes
    assert sum(e.guid is None for e in episodes) == 1


def test_atom_relative_links_resolve_against_xml_base():
    (ep,) = parse("feedparser_atom10.xml").episodes
    assert ep.enclosure_url == "http://www.example.com/movie.mp4" and ep.link.startswith("http://")


def test_missing_enclosure_length_and_invalid_duration_do_not_matter():
    assert all(e.enclosure_url for e in parse("radiofeed_rss_missing_enc_length.xml").episodes)
    assert all(e.enclosure_url for e in parse("radiofeed_rss_invalid_duration.xml").episodes)


def test_podcasting20_feed_transcripts_are_found():
    episodes = parse("partytime_pc20rss.xml").episodes
    assert sum(bool(e.transcripts) for e in episodes) == 47


def test_first_poll_takes_newest_three(store, config):
    feed, _ = store.add_feed("http://feeds.test/catalan")
    parsed = parse("radiofeed_rss_mock_catalan.xml")
    new = store_episodes(store, feed, parsed, take=config["feeds.initial_episodes"])
    assert len(new) == 3
    newest = sorted((e.published for e in parsed.episodes if e.published), reverse=True)[:3]
    assert sorted(e.published for e in store.episodes(Status.NEW)) == sorted(newest)
    assert len(store.episodes(Status.SKIPPED)) == 347
