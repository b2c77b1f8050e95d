"""``llm.mode = rewrite``: rephrase each ranked insight as one crisp "While X, Y" sentence.

The model sees only the insight's quotes, and its sentence replaces the extractive statement only when it
is grounded in them: no number or name the quotes lack, and close to them in embedding space.
"""

from __future__ import annotations

import logging

import numpy as np

from digest.embed import Embedder
from digest.llm.client import ContextTooLong, LlmClient, LlmUnavailable
from digest.llm.grounding import unsupported
from digest.llm.prompting import prompt
from digest.models import Insight

log = logging.getLogger(__name__)
MIN_SIMILARITY = 0.6


def messages(insight: Insight) -> list[dict[str, str]]:
    """The chat messages for one insight, from ``prompts/``."""
    return prompt("rewrite", shows=insight.show_names, quotes=insight.quotes)


def ungrounded(candidate: str, quotes: list[str], embedder: Embedder) -> str | None:
    """Why a rewrite is not grounded in its quotes, or ``None`` when it is."""
    if reason := unsupported(candidate, quotes):
        return reason
    vectors = embedder.embed([candidate, *quotes])
    similarity = float(np.mean(vectors[1:] @ vectors[0]))
    if similarity < MIN_SIMILARITY:
        return f"drifts from the quotes (similarity {similarity:.2f})"
    return None


def rewrite(client: LlmClient, insights: list[Insight], embedder: Embedder) -> None:
    """Replace each insight's text with a grounded rewrite, leaving the extractive statement otherwise."""
    for insight in insights:
        try:
            candidate = client.chat(messages(insight), max_tokens=120).strip().strip('"“”').strip()
        except LlmUnavailable as exc:
            log.warning("LLM rewrite stopped, keeping the extracts: %s", exc)
            return
        except ContextTooLong as exc:
            log.warning(
                "LLM rewrite of insight %d does not fit the context, keeping the extract: %s", insight.rank, exc
            )
            continue
        reason = ungrounded(candidate, [q.text for q in insight.quotes], embedder)
        if reason:
            log.info("LLM rewrite of insight %d rejected (%s): %r", insight.rank, reason, candidate)
            continue
        insight.text = candidate
