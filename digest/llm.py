"""Optional: rewrite each insight as one crisp "While X, Y" sentence through an OpenAI-compatible API.

Off by default. The model sees only the cluster's quotes, and its sentence replaces the
extractive statement only when it is grounded in them: close in embedding space, and
with no number or name the quotes do not contain.
"""

from __future__ import annotations

import logging
import os
import re

import httpx
import jinja2
import numpy as np

from digest.config import Config
from digest.embed import Embedder
from digest.models import Insight

log = logging.getLogger(__name__)
MIN_SIMILARITY = 0.6
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z]+")


def _templates() -> jinja2.Environment:
    loader = jinja2.PackageLoader("digest.prompts", ".")
    return jinja2.Environment(loader=loader, autoescape=False, undefined=jinja2.StrictUndefined)


def messages(insight: Insight) -> list[dict[str, str]]:
    """The chat messages for one insight, from ``prompts/``."""
    env = _templates()
    return [
        {"role": "system", "content": env.get_template("rewrite_system.md.j2").render().strip()},
        {
            "role": "user",
            "content": env.get_template("rewrite_user.md.j2")
            .render(shows=insight.show_names, quotes=insight.quotes)
            .strip(),
        },
    ]


def ungrounded(candidate: str, quotes: list[str], embedder: Embedder) -> str | None:
    """Why a rewrite is not grounded in its quotes, or ``None`` when it is."""
    source = " ".join(quotes)
    numbers = set(_NUMBER.findall(candidate)) - set(_NUMBER.findall(source))
    if numbers:
        return f"invented numbers: {', '.join(sorted(numbers))}"
    names = {n for n in _NAME.findall(candidate) if n.lower() not in source.lower() and n not in {"While"}}
    if names:
        return f"invented names: {', '.join(sorted(names))}"
    vectors = embedder.embed([candidate, *quotes])
    similarity = float(np.mean(vectors[1:] @ vectors[0]))
    if similarity < MIN_SIMILARITY:
        return f"drifts from the quotes (similarity {similarity:.2f})"
    return None


def complete(config: Config, chat: list[dict[str, str]]) -> str:
    """One chat completion from the configured endpoint."""
    key = os.environ.get(config["llm.api_key_env"], "")
    response = httpx.post(
        config["llm.base_url"].rstrip("/") + "/chat/completions",
        json={"model": config["llm.model"], "messages": chat, "temperature": 0},
        headers={"Authorization": f"Bearer {key}"} if key else {},
        timeout=60,
    )
    response.raise_for_status()
    return str(response.json()["choices"][0]["message"]["content"]).strip().strip('"“”').strip()


def rewrite(config: Config, insights: list[Insight], embedder: Embedder) -> None:
    """Replace each insight's text with a grounded rewrite, leaving the extractive statement otherwise."""
    for insight in insights:
        try:
            candidate = complete(config, messages(insight))
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            log.warning("LLM rewrite of insight %d failed, keeping the extract: %s", insight.rank, exc)
            continue
        reason = ungrounded(candidate, [q.text for q in insight.quotes], embedder)
        if reason:
            log.info("LLM rewrite of insight %d rejected (%s): %r", insight.rank, reason, candidate)
            continue
        insight.text = candidate
