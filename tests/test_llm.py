"""The optional LLM rewrite, against a local server speaking the OpenAI chat API with recorded answers."""

from __future__ import annotations

import json

import pytest

from digest.config import load
from digest.llm import messages, rewrite
from digest.models import Insight, Quote


@pytest.fixture(scope="module")
def embedder():
    from digest.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


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


def recorded_openai_server(server, answer: str) -> str:
    """A loopback server that answers /v1/chat/completions with a recorded completion."""
    body = json.dumps(
        {
            "id": "rec-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        }
    )
    server.add("/v1/chat/completions", body.encode(), content_type="application/json")
    return server.url("/v1")


def configured(home, base_url: str):
    return load(home, overrides={"llm.enabled": True, "llm.base_url": base_url, "llm.model": "recorded"})


def test_prompt_holds_only_the_quotes_and_shows():
    chat = messages(insight())
    assert chat[0]["role"] == "system" and "While X, Y" in chat[0]["content"]
    assert "Heat pumps outsold" in chat[1]["content"] and "(Deep Rest)" in chat[1]["content"]


@pytest.mark.parametrize(
    "case,kept", [("grounded", True), ("invented_number", False), ("invented_name", False), ("off_topic", False)]
)
def test_recorded_rewrite_is_kept_only_when_grounded(server, home, embedder, case, kept):
    config = configured(home, recorded_openai_server(server, RECORDED[case]))
    item = insight()
    rewrite(config, [item], embedder)
    assert (item.text == RECORDED[case]) is kept
    assert item.statement.startswith("Heat pumps outsold")
    sent = json.loads(server.request_bodies[-1])
    assert sent["model"] == "recorded" and sent["messages"][1]["role"] == "user"


def test_unreachable_llm_keeps_the_extract(home, embedder):
    config = configured(home, "http://127.0.0.1:9/v1")
    item = insight()
    rewrite(config, [item], embedder)
    assert item.text == item.statement
