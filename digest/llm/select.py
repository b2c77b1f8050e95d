"""``llm.mode = select``: a language model reads every episode of the day and picks its insights.

1. **Map.** Per episode, in parts that fit ``llm.context_tokens``, the model lists key points: a
   one-sentence claim with word-for-word quotes and their times. Each quote is grounded at once
   (:mod:`digest.llm.grounding`); a point left without a grounded quote is dropped. An episode whose
   answer stays malformed after one repair falls back to the ranker's best statements of that episode.
2. **Reduce.** Embeddings propose key points of other shows that may agree with a point; the model
   confirms which really do. A group is one candidate, backed by one quote per member.
3. **Select.** Candidates already sent are dropped; the model ranks the rest, given each one's agreeing
   shows, novelty and quotes, and says in one line why it picked each.
4. **Ground.** The model writes each pick's insight from the group's quotes only ("While X, Y"). A
   number or name missing from the quotes sends the pick back to its claim, and a claim that fails the
   same check is dropped with its reason. The five are never padded.

The endpoint going down or over budget raises :class:`~digest.llm.client.LlmUnavailable`; the caller
then ranks the day offline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from digest.embed import Embedder
from digest.features import max_similarity
from digest.llm.client import ContextTooLong, LlmClient, LlmUnavailable, MalformedAnswer
from digest.llm.grounding import Transcript, seconds, unsupported
from digest.llm.prompting import prompt, schema
from digest.models import Claim, Episode, Insight, Quote, RunnerUp, Segment
from digest.rank import ClaimInfo, DayContext, RankSettings, audio_link
from digest.render import clock

log = logging.getLogger(__name__)
POINTS_PER_PART = 6
PROPOSE = 0.5  # cosine between two claims at which embeddings ask the model whether they agree
MAX_PROPOSALS = 8
MAX_QUOTES = 4
ANSWER_TOKENS = 1500
PROMPT_TOKENS = 700  # the system prompt and its schema, roughly
CHARS_PER_TOKEN = 3  # conservative for transcripts: names and numbers cut into more tokens than prose
SELECT_QUOTE_WORDS = 40


@dataclass
class Day:
    """What selection reads: the window's episodes, their transcripts and statements, and the archive."""

    episodes: list[Episode]
    segments: dict[int, list[Segment]]
    statements: dict[int, list[Claim]]  # every statement of each episode, dropped ones too: quotes link to them
    kept: list[Claim]
    vectors: np.ndarray  # the kept statements' unit vectors
    info: dict[int, ClaimInfo]
    context: DayContext
    settings: RankSettings


@dataclass
class KeyPoint:
    """A claim the model found in one episode, with its grounded quotes."""

    claim: str
    episode_id: int
    feed_id: int
    quotes: list[Quote]


@dataclass
class _Candidate:
    id: int
    points: list[KeyPoint]
    vector: np.ndarray
    novelty: float = 1.0
    rejected: str = ""
    reason: str = ""
    quotes: list[Quote] = field(default_factory=list)  # one per member, at most MAX_QUOTES

    @property
    def shows(self) -> list[str]:
        return sorted({m.quotes[0].show for m in self.points})


def select(
    client: LlmClient, day: Day, embedder: Embedder, extractive: Callable[[int], list[Insight]]
) -> tuple[list[Insight], list[RunnerUp]]:
    """The day's insights and runners-up, picked by the model; ``extractive(episode_id)`` gives the
    ranker's best statements of an episode whose map answer stays malformed."""
    points: list[KeyPoint] = []
    dropped: list[RunnerUp] = []
    for ep in day.episodes:
        try:
            found, lost = map_episode(client, ep, day)
        except MalformedAnswer as exc:
            log.warning("episode %d: the model's key points stayed malformed (%s); using extracted claims", ep.id, exc)
            found, lost = [_point(i, ep) for i in extractive(ep.id)], []
        points += found
        dropped += lost
    if not points:
        return [], dropped
    candidates = reduce(client, points, embedder)
    _judge_novelty(candidates, day)
    chosen = _pick(client, candidates, day)
    insights: list[Insight] = []
    for c in chosen:
        insight = _ground(client, c, day, len(insights) + 1)
        if insight is not None:
            insights.append(insight)
    runners_up = [
        RunnerUp(c.points[0].claim, len(c.shows), 0.0, c.rejected or "not among the model's picks")
        for c in candidates
        if c not in chosen or c.rejected
    ]
    return insights, (runners_up + dropped)[:20]


def _point(insight: Insight, ep: Episode) -> KeyPoint:
    return KeyPoint(insight.statement, ep.id, ep.feed_id, insight.quotes[:1])


def map_episode(client: LlmClient, ep: Episode, day: Day) -> tuple[list[KeyPoint], list[RunnerUp]]:
    """The key points of one episode with their grounded quotes, and the points dropped as ungrounded."""
    segments = day.segments[ep.id]
    transcript = Transcript(segments)
    lines = [f"[{clock(s.start)}] {s.speaker + ': ' if s.speaker else ''}{' '.join(s.text.split())}" for s in segments]
    budget = max(2000, (client.config["llm.context_tokens"] - ANSWER_TOKENS - PROMPT_TOKENS) * CHARS_PER_TOKEN)
    parts = _cut(lines, budget)
    where = day.info[ep.id]
    found, lost = [], []
    queue = list(enumerate(parts, 1))
    while queue:
        n, part = queue.pop(0)
        messages = prompt(
            "map",
            show=where.show,
            episode=where.episode,
            part=n,
            parts=len(parts),
            transcript="\n".join(part),
            max_points=POINTS_PER_PART,
        )
        try:
            answer = client.chat_json(messages, schema("map"), max_tokens=ANSWER_TOKENS)
        except ContextTooLong as exc:
            if len(part) < 2:
                log.warning("episode %d: one transcript line does not fit the context; skipped (%s)", ep.id, exc)
                continue
            log.info("episode %d part %d does not fit the context; halving it", ep.id, n)
            queue[:0] = [(n, part[: len(part) // 2]), (n, part[len(part) // 2 :])]
            continue
        for item in answer["key_points"][:POINTS_PER_PART]:
            quotes, why = [], ""
            for q in item["quotes"]:
                passage, why = transcript.locate(q["text"], seconds(q["start"]))
                claim_id = _statement_at(day.statements.get(ep.id, []), passage.start) if passage else None
                if passage and claim_id:
                    url = audio_link(where.audio_url, passage.start)
                    quotes.append(Quote(passage.text, where.show, where.episode, passage.start, url, claim_id))
            if quotes:
                found.append(KeyPoint(item["claim"].strip(), ep.id, ep.feed_id, quotes))
            else:
                log.info("episode %d: key point dropped, %s: %r", ep.id, why or "no quotes", item["claim"])
                lost.append(RunnerUp(item["claim"], 1, 0.0, f"ungrounded: {why or 'no quotes'}"))
    return found, lost


def _cut(lines: list[str], budget: int) -> list[list[str]]:
    """Consecutive lines in parts of at most ``budget`` characters (a longer line is a part of its own)."""
    parts: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if parts[-1] and size + len(line) + 1 > budget:
            parts.append([])
            size = 0
        parts[-1].append(line)
        size += len(line) + 1
    return [p for p in parts if p]


def _statement_at(statements: list[Claim], start: float) -> int | None:
    """The statement that holds the second ``start``, else the one starting nearest to it."""
    if not statements:
        return None
    holding = [c for c in statements if c.start - 0.01 <= start <= c.end + 0.01]
    return (holding or sorted(statements, key=lambda c: abs(c.start - start)))[0].id


def reduce(client: LlmClient, points: list[KeyPoint], embedder: Embedder) -> list[_Candidate]:
    """Group key points that make the same claim on different shows: embeddings propose, the model confirms."""
    vectors = embedder.embed([p.claim for p in points])
    used: set[int] = set()
    candidates: list[_Candidate] = []
    for i, point in enumerate(points):
        if i in used:
            continue
        used.add(i)
        sims = vectors @ vectors[i]
        proposals = [
            int(j)
            for j in np.argsort(-sims, kind="stable")
            if int(j) not in used and points[j].feed_id != point.feed_id and sims[j] >= PROPOSE
        ][:MAX_PROPOSALS]
        members = [point]
        if proposals:
            named = [{"show": p.quotes[0].show, "claim": p.claim} for p in (points[j] for j in proposals)]
            messages = prompt("agree", point={"show": point.quotes[0].show, "claim": point.claim}, candidates=named)
            try:
                agree = client.chat_json(messages, schema("agree"), max_tokens=100)["agree"]
            except (MalformedAnswer, ContextTooLong) as exc:
                log.info("agreement check failed (%s); keeping %r on its own", exc, point.claim)
                agree = []
            for n in dict.fromkeys(agree):
                if 1 <= n <= len(proposals):
                    used.add(proposals[n - 1])
                    members.append(points[proposals[n - 1]])
        quotes = [m.quotes[0] for m in members][:MAX_QUOTES]
        candidates.append(_Candidate(len(candidates) + 1, members, vectors[i], quotes=quotes))
    return candidates


def _judge_novelty(candidates: list[_Candidate], day: Day) -> None:
    """Novelty against what was heard before. A candidate too close to anything already sent is dropped,
    and so is one where no member's claim is backed by the group's quotes."""
    if not candidates:
        return
    claims = np.stack([c.vector for c in candidates])
    heard = max_similarity(claims, day.context.heard)
    sent = max_similarity(claims, day.context.sent)
    for c, h, s in zip(candidates, heard, sent):
        c.novelty = round(float(np.clip(1 - h, 0, 1)), 4)
        sources = [q.text for m in c.points for q in m.quotes]
        reasons = [unsupported(m.claim, sources) for m in c.points]
        if s >= day.settings.novelty_threshold:
            c.rejected = f"already sent in an earlier digest (similarity {s:.2f})"
        elif None not in reasons:
            c.rejected = f"ungrounded claim: {reasons[0]}"
        else:  # the first member whose claim its quotes back leads
            c.points.insert(0, c.points.pop(reasons.index(None)))


def _pick(client: LlmClient, candidates: list[_Candidate], day: Day) -> list[_Candidate]:
    """The model's picks among the open candidates, best first, each a distinct story."""
    open_ = sorted((c for c in candidates if not c.rejected), key=lambda c: (-len(c.shows), -c.novelty, c.id))
    budget = (client.config["llm.context_tokens"] - PROMPT_TOKENS - 600) * CHARS_PER_TOKEN
    shown, size = [], 0
    for c in open_:
        quotes = [{"show": q.show, "text": " ".join(q.text.split()[:SELECT_QUOTE_WORDS])} for q in c.quotes[:2]]
        entry = {"id": c.id, "text": c.points[0].claim, "shows": c.shows, "novelty": c.novelty, "quotes": quotes}
        size += len(str(entry))
        if size > budget:
            break
        shown.append(entry)
    if not shown:
        return []
    top_k = day.settings.top_k
    try:
        answer = client.chat_json(prompt("select", candidates=shown, top_k=top_k), schema("select"), max_tokens=600)
    except (MalformedAnswer, ContextTooLong) as exc:
        raise LlmUnavailable(f"the selection answer was unusable: {exc}") from None
    ids = {e["id"] for e in shown}
    by_id = {c.id: c for c in open_ if c.id in ids}
    chosen: list[_Candidate] = []
    for pick in answer["picks"]:
        found = by_id.get(pick["id"])
        if found is None or found in chosen:
            continue
        c = found
        twin = max(chosen, key=lambda s: float(s.vector @ c.vector), default=None)
        if twin is not None and float(twin.vector @ c.vector) >= day.settings.cluster_threshold:
            c.rejected = f"repeats #{chosen.index(twin) + 1} (similarity {float(twin.vector @ c.vector):.2f})"
            continue
        c.reason = " ".join(str(pick["reason"]).split())
        chosen.append(c)
        if len(chosen) == top_k:
            break
    return chosen


def _ground(client: LlmClient, c: _Candidate, day: Day, rank_no: int) -> Insight | None:
    """The pick as an insight whose every number and name is in its quotes, or ``None`` (logged) when
    neither the model's wording nor the claim is grounded."""
    sources = [q.text for m in c.points for q in m.quotes]
    claim = c.points[0].claim
    text = claim
    try:
        written = str(client.chat_json(prompt("write", quotes=c.quotes), schema("write"), max_tokens=200)["insight"])
        written = " ".join(written.split()).strip('"“”')
        if reason := unsupported(written, sources):
            log.info("insight %r: the written text was dropped (%s); keeping the claim", claim, reason)
        elif written:
            text = written
    except (MalformedAnswer, ContextTooLong) as exc:
        log.info("insight %r: writing failed (%s); keeping the claim", claim, exc)
    if reason := unsupported(text, sources):
        c.rejected = f"ungrounded: {reason}"
        log.warning("pick dropped, %s: %r", reason, text)
        return None
    first: dict[int, Quote] = {}
    for q in c.quotes:
        first.setdefault(q.claim_id, q)  # one quote per stored statement
    quotes = list(first.values())
    quote_ids = [q.claim_id for q in quotes]
    story = (
        [
            day.kept[int(j)].id
            for j in np.flatnonzero(day.vectors @ c.vector >= day.settings.cluster_threshold)
            if day.kept[int(j)].id not in quote_ids
        ]
        if len(day.kept)
        else []
    )
    return Insight(
        rank=rank_no,
        text=text,
        statement=claim,
        shows=len({m.feed_id for m in c.points}),
        episodes=len({m.episode_id for m in c.points}),
        novelty=c.novelty,
        salience=0.0,
        score=0.0,
        quotes=quotes,
        claim_ids=quote_ids + story,
        show_names=c.shows,
        reason=c.reason,
    )
