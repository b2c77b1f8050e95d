"""The optional LLM steps against a scripted OpenAI-compatible server on loopback (no model runs in tests).

``llm.mode = select``: map → reduce → select → ground over a real labelled day, and every way the
server can misbehave, each with an assertion on what reaches the digest: nothing ungrounded, ever.
``llm.mode = rewrite``: a rephrased pick is kept only when grounded.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
from click.testing import CliRunner
from scripted_llm import KEY_POINTS, ScriptedOpenAIServer, map_from_fixtures
from test_deliver import eval_insights, follow_eval_day

from digest import pipeline
from digest.cli import cli
from digest.config import load
from digest.llm.client import LlmClient
from digest.llm.rewrite import messages, rewrite
from digest.models import Insight, Quote
from digest.render import email_parts
from digest.store import Store

pytestmark = pytest.mark.slow
DAY = "2026-11-20"
# The day's VTT cues start every 10 s: line n of an episode starts at 10·n s.
TRANSCRIPTS = {
    ep["title"]: [(10.0 * n, line.text) for n, line in enumerate(ep["parsed"])]
    for ep in eval_insights.load_day(eval_insights.EVAL / "day1.toml")["episode"]
}


@pytest.fixture
def llm():
    server = ScriptedOpenAIServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def embedder():
    from digest.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


def select_day(home, llm, embedder, **overrides):
    """Run ``llm.mode = select`` over day 1 of the labelled corpus; the digest and the store."""
    follow_eval_day(home)
    settings = {"llm.mode": "select", "llm.base_url": llm.url, "llm.model": "scripted-model", **overrides}
    config = load(home, overrides=settings)
    store = Store(config.db_path)
    report = pipeline.run(config, store, date=DAY, quiet=True, dry_run=True, embedder=embedder)
    return report.digest, store, config


def assert_grounded(digest) -> None:
    """Every quote is a passage of its episode's transcript, at the second that passage's line starts."""
    for insight in digest.insights:
        assert insight.quotes
        for q in insight.quotes:
            lines = TRANSCRIPTS[q.episode]
            assert any(q.text.lower() in text.lower() and q.start == start for start, text in lines), q
            assert q.url.endswith(f"#t={int(q.start)}")
        source = " ".join(q.text for q in insight.quotes).lower()
        assert set(re.findall(r"\d+", insight.text)) <= set(re.findall(r"\d+", source))


def test_select_maps_reduces_selects_and_grounds_a_real_day(home, llm, embedder):
    digest, store, config = select_day(home, llm, embedder)
    assert digest.method == "llm" and digest.method_note == "scripted-model"
    assert_grounded(digest)
    assert len(digest.insights) == 4  # four stories on this day; never padded to five
    sodium = next(i for i in digest.insights if "sodium" in i.text)
    assert sodium.text.startswith("While lithium") and sodium.shows == 2
    assert sodium.show_names == ["The Grid Report", "Work in Progress"]
    hybrid = next(i for i in digest.insights if "from home" in i.text)
    assert hybrid.shows == 3 and len(hybrid.quotes) == 3
    assert all(i.reason.startswith("Candidate") for i in digest.insights)
    assert set(llm.tasks()) == {"map", "agree", "select", "write"} and llm.tasks().count("map") == 4
    stored = store.digest(DAY)
    run = digest.to_json(explain=True)
    assert len(run.pop("key_points")) == sum(map(len, KEY_POINTS.values()))  # every key point and its fate
    assert run.pop("llm_usage")["calls"] == len(llm.requests)
    assert stored.to_json(explain=True) == run
    html, text = email_parts(stored, subject_line="s", recipient="r@example.com", unsubscribe_url="u", archive_url="a")
    assert "Picked by scripted-model" in text and "Picked by scripted-model" in html
    assert "“Teams that work from home two days a week ship just as much code”" in text  # a passage, not the statement

    calls = len(llm.requests)
    again = pipeline.run(config, store, date=DAY, quiet=True, dry_run=True, embedder=embedder).digest
    assert len(llm.requests) == calls  # a rerun answers from the cache: no call
    assert again.insights == digest.insights and again.runners_up == digest.runners_up


def test_readers_choose_among_the_models_grounded_candidates_without_another_call(home, llm, embedder, smtp):
    from test_readers_mail import headlines

    from digest.models import Digest
    from digest.readers import Preferences

    def pick_two(request: dict) -> str:
        return json.dumps(
            {
                "picks": [
                    {"id": int(i), "reason": f"Candidate {i}."}
                    for i in re.findall(r"^\[(\d+)\]", request["messages"][1]["content"], re.M)[:2]
                ]
            }
        )

    llm.scripts["select"] = pick_two  # two picks: the day's other two stories stay the model's candidates
    digest, store, config = select_day(home, llm, embedder)
    candidates, vectors = store.candidates(DAY)
    assert [c.insight.text for c in candidates if c.common] == [i.text for i in digest.insights]
    others = [c for c in candidates if not c.common]
    claims = {p["claim"] for points in KEY_POINTS.values() for p in points}
    assert len(digest.insights) == 2 and len(others) == 2
    assert all(c.insight.statement in claims and c.insight.text == c.insight.statement for c in others)
    assert all(c.feed_ids and len(c.feed_ids) == c.insight.shows for c in others) and vectors.shape == (4, 384)
    assert_grounded(Digest(DAY, [c.insight for c in others]))  # the model's quotes, as grounded

    keen, _ = store.add_subscriber("keen@example.com")
    store.save_preferences(keen.id, Preferences(interests=[others[-1].insight.text], vectors=vectors[-1:]))
    store.add_subscriber("plain@example.com")
    calls = len(llm.requests)
    assert "2 sent" in CliRunner().invoke(cli, ["send", "--date", DAY], catch_exceptions=False).output
    mails = {m["To"]: m for m in smtp.messages}
    assert headlines(mails["plain@example.com"]) == [i.text for i in digest.insights]
    keen_got = headlines(mails["keen@example.com"])
    assert keen_got[0] == others[-1].insight.text and len(keen_got) == 2  # as many as the common digest has
    assert len(llm.requests) == calls == digest.llm_usage["calls"]  # no call per reader
    assert llm.tasks().count("write") == 2  # headlines written for the picks only


def test_invented_quotes_and_wrong_timestamps_never_reach_the_digest(home, llm, embedder):
    invented = {
        "claim": "Grid batteries caught fire in four states last year.",
        "quotes": [{"text": "grid batteries caught fire in four states last year", "start": "0:20"}],
    }
    misplaced = {
        "claim": "Sodium is cheap because it comes from ordinary salt.",
        "quotes": [{"text": "Sodium is cheap because it comes from ordinary salt", "start": "1:20"}],
    }

    def misbehaving_map(request):
        answer = json.loads(map_from_fixtures(request))
        if "Grid 40" in request["messages"][1]["content"]:
            answer["key_points"] = [invented, misplaced, *answer["key_points"]]
        return json.dumps(answer)

    llm.scripts["map"] = misbehaving_map
    digest, _, _ = select_day(home, llm, embedder)
    assert_grounded(digest)
    everything = json.dumps(digest.to_json())
    assert "caught fire" not in everything and "ordinary salt" not in everything
    reasons = {r.statement: r.reason for r in digest.runners_up}
    assert reasons[invented["claim"]] == "ungrounded: quote not in the transcript"
    assert reasons[misplaced["claim"]].startswith("ungrounded: timestamp 80 s is not where the transcript has it")


def test_names_and_numbers_missing_from_the_episode_never_reach_the_digest(home, llm, embedder):
    """A claim with a number its episode lacks near its quotes is restated once from the transcript; a headline
    with a name or number the episodes lack falls back to the lead claim. Nothing invented is shown."""

    def map_with_an_invented_number(request):
        answer = json.loads(map_from_fixtures(request))
        for point in answer["key_points"]:
            if "plastic" in point["claim"]:
                point["claim"] = "Researchers found microplastics in 93 percent of bottles tested."
        return json.dumps(answer)

    llm.scripts["map"] = map_with_an_invented_number
    llm.scripts["write"] = lambda request: json.dumps(
        {
            "headline": "While Nestle denies it, sodium batteries are 70 percent cheaper than lithium ones.",
            "quotes": [1],
        }
        if "Sodium" in request["messages"][1]["content"]
        else {"headline": "", "quotes": []}
    )
    digest, _, _ = select_day(home, llm, embedder)
    assert digest.method == "llm"
    assert_grounded(digest)
    everything = json.dumps(digest.to_json())
    assert "Nestle" not in everything and "70 percent" not in everything and "93 percent" not in everything
    sodium = next(i for i in digest.insights if "odium" in i.text)
    claims = {p["claim"] for points in KEY_POINTS.values() for p in points}
    assert sodium.text in claims  # the lead claim, not the headline
    restated = [k for k in digest.key_points if k.fate.startswith("restated (numbers not in the source: 93)")]
    assert len(restated) == 2 and llm.tasks().count("restate") == 2, [(k.claim, k.fate) for k in digest.key_points]
    assert all("93" not in k.claim for k in digest.key_points)


def test_a_name_in_the_speaker_label_or_a_version_number_is_grounded(home, llm, embedder):
    """Facts are checked against the episode near the quotes, speakers and titles included: "GPT-4" is one
    token, and a title's words back a claim."""

    def map_naming_the_show(request):
        answer = json.loads(map_from_fixtures(request))
        for point in answer["key_points"]:
            if "Sodium-ion" in point["claim"]:
                point["claim"] = (
                    "The Grid Report says sodium-ion batteries now cost less than lithium ones on the grid."
                )
        return json.dumps(answer)

    llm.scripts["map"] = map_naming_the_show
    digest, _, _ = select_day(home, llm, embedder)
    fates = {k.claim: k.fate for k in digest.key_points}
    said = "The Grid Report says sodium-ion batteries now cost less than lithium ones on the grid."
    assert said in fates and "restated" not in fates[said] and "replaced" not in fates[said]
    assert llm.tasks().count("restate") == 0


def test_malformed_json_is_repaired_once_then_the_episode_falls_back_to_extracted_claims(home, llm, embedder):
    answered: dict[str, int] = {}

    def malformed_map(request):
        user = request["messages"][-1]["content"]
        title = re.search(r"^Episode: (.+)$", request["messages"][1]["content"], re.M)[1]
        answered[title] = answered.get(title, 0) + 1
        if title.startswith("Field Notes"):
            return "Sure! Here are the key points: sodium, plastics."  # never JSON
        if title.startswith("Deep Rest") and "invalid" not in user:
            return '{"key_points": [{"claim": "missing its quotes"}]}'  # wrong shape, then repaired
        return map_from_fixtures(request)

    llm.scripts["map"] = malformed_map
    digest, _, _ = select_day(home, llm, embedder)
    assert digest.method == "llm"
    assert answered["Field Notes 203: what is in the water"] == 2 and answered["Deep Rest 11: body clocks"] == 2
    assert_grounded(digest)
    repaired = [r for r in llm.requests if r["messages"][-1]["content"].startswith("That answer is invalid")]
    assert any("$.key_points[0].quotes is missing" in r["messages"][-1]["content"] for r in repaired)
    assert "Field Notes" in " ".join(n for i in digest.insights for n in i.show_names)  # from its extracted claims


@pytest.mark.parametrize(
    "misbehaviour,note",
    [
        ("timeout", "no answer within 1 s"),
        ("500", "HTTP 500 twice"),
        ("429", "HTTP 429 twice"),
        ("down", "cannot reach"),
        ("budget", "call budget spent (llm.max_calls = 3)"),
    ],
)
def test_a_failing_endpoint_falls_back_to_the_offline_ranking_for_the_rest_of_the_run(
    home, llm, embedder, misbehaviour, note
):
    overrides: dict = {"llm.timeout": 1.0}
    if misbehaviour == "timeout":
        llm.delay = 2.0
    elif misbehaviour in {"500", "429"}:
        llm.scripts["map"] = lambda request: (int(misbehaviour), '{"error": {"message": "overloaded"}}')
    elif misbehaviour == "down":
        overrides["llm.base_url"] = "http://127.0.0.1:9/v1"
    else:
        overrides["llm.max_calls"] = 3
    digest, _, _ = select_day(home, llm, embedder, **overrides)
    assert digest.method == "ranker" and note in digest.method_note
    assert digest.insights  # the offline ranking still makes the day
    calls = {"timeout": 1, "500": 2, "429": 2, "down": 0, "budget": 3}[misbehaviour]
    assert len(llm.requests) == calls  # once down, no further call this run


def test_a_transient_429_is_retried_once(home, llm, embedder):
    failed: list[int] = []

    def busy_once(request):
        if not failed:
            failed.append(429)
            return 429, '{"error": {"message": "rate limited"}}'
        return map_from_fixtures(request)

    llm.scripts["map"] = busy_once
    digest, _, _ = select_day(home, llm, embedder)
    assert digest.method == "llm" and failed == [429] and len(digest.insights) == 4


def test_a_part_too_long_for_the_context_is_halved(home, llm, embedder):
    def small_context(request):
        lines = re.findall(r"^\[\d+:\d\d:\d\d\]", request["messages"][1]["content"], re.M)
        if len(lines) > 5:
            return 400, '{"error": {"message": "This model\'s maximum context length is 2048 tokens."}}'
        return json.dumps(
            {
                "key_points": [
                    p
                    for p in json.loads(map_from_fixtures(request))["key_points"]
                    if any(q["start"] in {"0:20", "0:30", 20, 30} for q in p["quotes"])
                ]
            }
        )

    llm.scripts["map"] = small_context
    digest, _, _ = select_day(home, llm, embedder, **{"llm.context_tokens": 2048})
    assert digest.method == "llm"
    assert llm.tasks().count("map") == 4 * 3  # each episode: one refused, then its two halves
    assert_grounded(digest)
    assert any("sodium" in i.text for i in digest.insights)


def test_the_api_key_comes_from_the_environment_and_never_reaches_the_log(home, llm, embedder, monkeypatch, caplog):
    monkeypatch.setenv("DIGEST_LLM_API_KEY", "sk-test-secret-123")
    with caplog.at_level(logging.DEBUG):
        select_day(home, llm, embedder)
    assert {h.get("Authorization") for h in llm.headers} == {"Bearer sk-test-secret-123"}
    assert "sk-test-secret-123" not in caplog.text


def test_llm_check_reports_model_context_latency_and_json(home, llm):
    env = {"DIGEST_LLM_BASE_URL": llm.url, "DIGEST_LLM_MODEL": "scripted-model"}
    result = CliRunner(env=env).invoke(cli, ["llm", "check"])
    assert result.exit_code == 0, result.output
    assert "Model: scripted-model" in result.output and "Context: 8192" in result.output
    assert "Valid JSON: yes" in result.output and re.search(r"Latency: \d+\.\d\d s", result.output)
    small = CliRunner(env={**env, "DIGEST_LLM_CONTEXT_TOKENS": "32768"}).invoke(cli, ["llm", "check"])
    assert "llm.context_tokens (32768) is more than the model's context; set it to 8192" in small.output
    llm.scripts["check"] = lambda request: "ok!"
    result = CliRunner(env=env).invoke(cli, ["llm", "check", "--json"])
    assert result.exit_code == 1 and json.loads(result.output)["valid_json"] is False
    down = CliRunner(env={**env, "DIGEST_LLM_BASE_URL": "http://127.0.0.1:9/v1"}).invoke(cli, ["llm", "check"])
    assert down.exit_code != 0 and "cannot reach http://127.0.0.1:9/v1" in down.output


# llm.mode = rewrite


def insight() -> Insight:
    quotes = [
        Quote(
            "Heat pumps outsold gas furnaces in the United States for the third year in a row.",
            "The Grid Report",
            "Grid 41",
            12.0,
            None,
        ),
        Quote(
            "Americans now buy more heat pumps than gas furnaces, and that has been true for three years running.",
            "Deep Rest",
            "Deep Rest 12",
            30.0,
            None,
        ),
    ]
    return Insight(
        1, quotes[0].text, quotes[0].text, 2, 2, 1.0, 1.0, 2.0, quotes, [1, 2], ["Deep Rest", "The Grid Report"]
    )


RECORDED = {
    "grounded": (
        "While gas furnaces were the default, heat pumps have outsold them in the United States three years running."
    ),
    "invented_number": "While gas furnaces dominated, heat pumps now outsell them by 45 percent in the United States.",
    "invented_name": (
        "While Exxon lobbied for gas, heat pumps outsold gas furnaces in the United States for three years."
    ),
    "off_topic": "While coffee prices rose, most cafes switched to oat milk.",
}


def test_prompt_holds_only_the_quotes_and_shows():
    chat = messages(insight())
    assert chat[0]["role"] == "system" and "While X, Y" in chat[0]["content"]
    assert "Heat pumps outsold" in chat[1]["content"] and "(Deep Rest)" in chat[1]["content"]


@pytest.mark.parametrize(
    "case,kept", [("grounded", True), ("invented_number", False), ("invented_name", False), ("off_topic", False)]
)
def test_a_rewrite_is_kept_only_when_grounded(home, llm, embedder, case, kept):
    llm.scripts["rewrite"] = lambda request: RECORDED[case]
    config = load(home, overrides={"llm.mode": "rewrite", "llm.base_url": llm.url, "llm.model": "scripted-model"})
    item = insight()
    rewrite(LlmClient(config), [item], embedder)
    assert (item.text == RECORDED[case]) is kept
    assert item.statement.startswith("Heat pumps outsold")
    assert llm.requests[-1]["model"] == "scripted-model" and llm.requests[-1]["messages"][1]["role"] == "user"


def test_an_unreachable_endpoint_keeps_the_extract(home, embedder):
    config = load(home, overrides={"llm.mode": "rewrite", "llm.base_url": "http://127.0.0.1:9/v1", "llm.model": "m"})
    item = insight()
    rewrite(LlmClient(config), [item], embedder)
    assert item.text == item.statement
