"""Archive search: hybrid hits with provenance, filters, odd queries, triggers and index rebuilds."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from test_deliver import follow_eval_day

from digest import pipeline
from digest.archive import fts_query
from digest.cli import cli
from digest.config import load
from digest.store import Store


@pytest.fixture
def archive_home(home):
    follow_eval_day(home, upto=2)
    config = load(home)
    store = Store(config.db_path)
    pipeline.run(config, store, date="2026-11-20", quiet=True, dry_run=True)
    return home


def search(*args: str) -> list[dict]:
    out = CliRunner().invoke(cli, ["search", *args, "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


@pytest.mark.slow
def test_hybrid_search_finds_paraphrases_with_show_episode_date_and_audio_link(archive_home):
    hits = search("salt batteries replacing lithium")
    kinds = {h["kind"] for h in hits}
    assert {"insight", "claim"} <= kinds
    # An insight is also a claim and a transcript line: each sentence is listed once, as its best hit.
    said = [" ".join(re.findall(r"\w+", h["text"].lower())) for h in hits]
    assert not [(a, b) for n, a in enumerate(said) for b in said[n + 1 :] if a in b or b in a]
    assert search("salt batteries replacing lithium", "--kind", "transcript")
    top_claim = next(h for h in hits if h["kind"] == "claim")
    assert "sodium" in top_claim["text"].lower() and top_claim["show"] and top_claim["episode"]
    assert top_claim["date"] in {"2026-11-20", "2026-11-21"} and top_claim["url"].endswith(
        f"#t={int(top_claim['start'])}"
    )
    semantic_only = search("people sleeping at home versus the office", "--kind", "claim")
    assert semantic_only, "no shared words needed: the semantic half finds it"


@pytest.mark.slow
def test_filters_narrow_the_hits(archive_home):
    assert {h["show"] for h in search("sodium", "--show", "Field Notes", "--kind", "claim")} == {"Field Notes"}
    assert all(h["date"] >= "2026-11-21" for h in search("sodium", "--since", "2026-11-21"))
    assert search("sodium", "--until", "2026-11-01") == []
    assert all(h["kind"] == "transcript" for h in search("heat pumps", "--kind", "transcript", "--limit", "3"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "query",
    [
        '"heat pumps"',
        "heat NEAR pumps",
        "heat* -pumps",
        "AND OR NOT",
        '"unbalanced',
        "the",
        "of the and",
        "!!! ???",
        "(",
        "'",
        "sodium's",
    ],
)
def test_odd_queries_never_error(archive_home, query):
    out = CliRunner().invoke(cli, ["search", query, "--json"])
    assert out.exit_code == 0, out.output
    json.loads(out.output)


def test_fts_query_quotes_every_term():
    assert fts_query('heat* NEAR(-pumps) "gas furnaces"') == '"heat" "NEAR" "pumps" "gas furnaces"'
    assert fts_query("!!! ???") is None


@pytest.mark.slow
def test_fts_follows_deletes_and_a_corrupt_vector_index_is_rebuilt(archive_home):
    assert search("octopus", "--kind", "transcript") and search("octopus", "--kind", "claim")
    index = archive_home / "index" / "search-claim.faiss"
    assert index.exists()
    index.write_bytes(b"\x00garbage")
    assert search("octopus", "--kind", "claim")  # rebuilt from SQLite
    field_notes = next(
        f for f in json.loads(CliRunner().invoke(cli, ["feeds", "list", "--json"]).output) if "field-notes" in f["url"]
    )
    CliRunner().invoke(cli, ["feeds", "remove", str(field_notes["id"])])
    assert search("octopus", "--kind", "transcript") == []
    assert not [h for h in search("octopus", "--kind", "claim") if h["show"] == "Field Notes"]


@pytest.mark.slow
def test_numpy_minilm_matches_sentence_transformers():
    from digest.embed import SentenceTransformerEmbedder
    from digest.minilm import NumpyMiniLM

    texts = ["Sodium ion batteries now cost less than lithium.", "What has been said about heat pumps?", "a", ""]
    fast, reference = NumpyMiniLM().embed(texts), SentenceTransformerEmbedder().embed(texts)
    assert fast.shape == reference.shape == (4, 384)
    assert np.abs(fast - reference).max() < 1e-5
