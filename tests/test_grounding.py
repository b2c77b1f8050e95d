"""The fact check of ``llm.mode = select``: names and numbers read as whole tokens against what the episode says
near the quotes. Each case comes from what a capable model wrote on the real-dev days."""

from __future__ import annotations

import pytest

from digest.llm.grounding import facts, unsupported

SOURCE = [
    "Changelog News",
    "Luis Villa: we should stop using IP licences to govern ethics.",
    "Simon: GPT-4 hallucinates less than GPT 3.5 does, and the chief technology officer says gpt4all runs on laptops.",
    "Meta claims both sizes of Llama 3 beat models like Google’s Gemma, lifting scores from 17 to 83 percent,",
    "for infrastructure like Redis or Open Search, and Automattic gives 3915 hours a week.",
]


@pytest.mark.parametrize(
    "text",
    [
        "Luis Villa says the industry should stop using IP licences to govern ethics.",  # a name in a speaker label
        "GPT-4 hallucinates less than GPT-3.5, Simon says.",  # versions are tokens, not the numbers 4 and 3.5
        "The CTO says gpt4all runs on laptops.",  # an abbreviation of words the source spells out
        "Meta says Llama 3 beat Google's Gemma, lifting scores from 17 to 83 percent.",  # possessives
        "Licence changes hurt infrastructure such as Redis and OpenSearch.",  # one word for two
        "Automattic gives 3,915 hours a week, the Changelog News episode says.",  # digit groups, a title's words
        "An essay, 'Software for Redis', says Automattic gives.",  # a closing quotation mark ends the word
    ],
)
def test_what_the_episode_says_is_grounded(text):
    assert unsupported(text, SOURCE) is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Nestle says Llama 3 beat Gemma.", "names not in the source: Nestle"),  # a name opening the sentence
        ("While Anthropic disagrees, Llama 3 beat Gemma.", "names not in the source: Anthropic"),
        ("Scores rose from 17 to 93 percent.", "numbers not in the source: 93"),
        ("GPT-5 hallucinates less.", "names not in the source: GPT-5"),  # not backed by GPT-4 or by 5 alone
    ],
)
def test_a_name_or_number_the_episode_lacks_is_caught(text, why):
    assert unsupported(text, SOURCE) == why


def test_facts_are_whole_tokens():
    assert facts("Meta's Llama 2 beat GPT-3.5 and H100s cost $30,000.") == (
        ["2", "30,000"],
        ["Meta", "Llama", "GPT-3.5", "H100s"],
    )


def test_names_may_stand_anywhere_in_the_episode_numbers_only_near_the_quotes():
    near = ["Simon: it answers nine out of ten questions, 9 of 10."]
    episode = ["Jerod: we run LLMs locally with Ollama, and WordPress dot org is the site."]
    assert unsupported("Ollama's LLM answers 9 of 10, per WordPress.org.", near, episode) is None
    assert unsupported("Ollama answers 9 of 12.", near, episode) == "numbers not in the source: 12"
    assert unsupported("Ollama answers 9 of 10.", near + ["it costs 12 dollars"], episode) is None
    assert unsupported("Mullenweg says so.", near, episode) == "names not in the source: Mullenweg"
