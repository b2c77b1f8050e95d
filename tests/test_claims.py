"""Claim extraction on real publisher transcripts and on hand-made cases, each drop with its reason."""

from __future__ import annotations

from conftest import CORPUS

from digest import publisher_transcripts
from digest.claims import extract, sentences, why_not_a_claim
from digest.models import Segment


def test_sentences_are_timed_by_the_segments_they_span():
    segs = [Segment(0, 10, "Sodium batteries are cheap now. They use salt"), Segment(10, 20, "instead of lithium.")]
    parts = sentences(segs)
    assert [p[0] for p in parts] == ["Sodium batteries are cheap now.", "They use salt instead of lithium."]
    assert parts[0][1] == 0 and parts[1][1] > 5 and parts[1][2] > 10


def test_sentences_split_after_lowercase_asr_starts_but_not_abbreviations():
    parts = sentences([Segment(0, 5, "Dr. Smith said prices fell. then they rose again.")])
    assert [p[0] for p in parts] == ["Dr. Smith said prices fell.", "then they rose again."]


def test_each_drop_has_its_reason():
    assert why_not_a_claim("This episode is brought to you by Acme VPN.") == "ad"
    assert why_not_a_claim("Use promo code GRID for twenty percent off your first year.") == "ad"
    assert why_not_a_claim("What is your favourite coffee mug, and why do you keep it?") == "question"
    assert why_not_a_claim("Thanks for listening to The Grid Report, see you next week.") == "small talk"
    assert why_not_a_claim("Right, totally.") == "fragment"
    assert why_not_a_claim("Sodium ion batteries now cost less than lithium for grid storage.") is None
    # Whisper often ends statements with a question mark; a statement is still a claim.
    assert why_not_a_claim("Hybrid schedules leave office towers half empty on Mondays?") is None


def test_repeated_intros_and_outros_are_boilerplate():
    def episode(story: str) -> list[Segment]:
        return [
            Segment(0, 5, "This is Field Notes, science news for curious people."),
            Segment(5, 10, story),
            Segment(10, 15, "Field Notes is an independent production made in Ohio."),
        ]

    octopus = "A new species of deep sea octopus was filmed near the Galapagos islands."
    history = [
        episode("The comet will pass closest to the earth on the ninth of March."),
        episode("Voyager sent back a clean signal after months of garbled data."),
    ]
    claims = extract(2, 1, episode(octopus), history)
    assert [c.dropped for c in claims] == ["boilerplate", None, "boilerplate"]
    alone = extract(2, 1, episode(octopus))
    assert [c.dropped for c in alone] == [None, None, None]


def test_short_sentences_are_merged_with_the_next():
    claims = extract(
        1, 1, [Segment(0, 4, "Prices fell."), Segment(4, 9, "Lithium is now cheaper than it was in 2020.")]
    )
    assert len(claims) == 1 and claims[0].text.startswith("Prices fell. Lithium") and claims[0].start == 0


def test_real_publisher_transcript_yields_timed_claims_and_drops():
    segments = publisher_transcripts.parse(
        (CORPUS / "transcripts" / "transcriptator_buzzcast.json").read_text(), "application/json"
    )
    claims = extract(1, 1, segments)
    kept = [c for c in claims if c.dropped is None]
    reasons = {c.dropped for c in claims}
    assert len(kept) > 50 and {"question", "fragment"} <= reasons
    assert all(0 <= c.start <= c.end <= segments[-1].end + 1 for c in claims)
    assert [c.start for c in claims] == sorted(c.start for c in claims)
