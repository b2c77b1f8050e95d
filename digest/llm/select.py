"""``llm.mode = select``: a language model reads every episode of the day and picks its insights.

1. **Map.** Per episode, in parts that fit ``llm.context_tokens`` (each part opens with the last lines of
   the part before and its speaker), the model lists key points: a one-sentence claim with word-for-word
   quotes and their times. Each quote is grounded at once (:mod:`digest.llm.grounding`); a point left
   without a grounded quote is dropped. A claim's numbers must stand in its episode near its quotes (the
   text within :data:`FACT_WINDOW` seconds, the speakers there, the episode's and show's titles), its names
   anywhere in the episode; a claim that fails is restated once by the model from that transcript, else
   it becomes its best quote. An episode whose answer stays malformed after one repair falls back to the
   ranker's best statements of that episode.
2. **Reduce.** Embeddings propose grounded key points of other shows that may agree with a point; the
   model confirms which really do. A candidate carries every member's claim and quotes; "said on N
   shows" counts the confirmed members' shows.
3. **Select.** Candidates that repeat a point already sent are dropped, and one close to what was sent is
   shown with it, for the model to judge whether it is news; the model sees every other candidate with its claims
   and full quotes, as many as the context holds (pre-ranked by the offline ranker's score), and picks
   up to ``rank.top_k`` distinct stories with a one-line reason each.
4. **Write.** The model writes each pick's headline from its claims and every quote with its show, and
   says which quotes support it; a headline with a name or number its episodes lack near the quotes
   falls back to the lead claim. The five are never padded.

The candidates selection saw and did not pick are kept too, each as its lead claim with every quote (no
further call): per-reader digests choose among the picks and them.

Every key point's fate is kept (``--explain``). The endpoint going down or over budget raises
:class:`~digest.llm.client.LlmUnavailable`; the caller then ranks the day offline.
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
from digest.models import Claim, Episode, Insight, KeyPointTrace, Quote, RunnerUp, Segment
from digest.rank import ClaimInfo, DayContext, RankSettings, audio_link

log = logging.getLogger(__name__)
POINTS_PER_PART = 8
PROPOSE = 0.45  # cosine between two claims at which embeddings ask the model whether they agree
MAX_PROPOSALS = 8
ANSWER_TOKENS = 2000
PROMPT_TOKENS = 900  # the system prompt and its schema, roughly
CHARS_PER_TOKEN = 3  # conservative for transcripts: names and numbers cut into more tokens than prose
OVERLAP_CHARS = 600  # of the part before, opening each later part
SAME_POINT_SENT = 0.8  # cosine to something already sent at which a candidate repeats it (MiniLM)
FACT_WINDOW = 180.0  # seconds around a quote where a claim's numbers must stand


def stamp(at: float) -> str:
    """``h:mm:ss``, the one time format the prompts use."""
    m, s = divmod(int(at), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


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
    scores: dict[int, float] = field(default_factory=dict)  # the offline ranker's log-odds by kept statement id
    sent: list[str] = field(default_factory=list)  # what earlier digests sent, row for row with ``context.sent``


@dataclass
class KeyPoint:
    """A claim the model found in one episode, with its grounded quotes and what became of it."""

    claim: str
    episode_id: int
    feed_id: int
    quotes: list[Quote]
    sources: list[str] = field(default_factory=list)  # the episode's text around the quotes, speakers, titles
    named: list[str] = field(default_factory=list)  # the whole episode: where its names may stand
    fate: str = "grounded"


@dataclass
class Selection:
    """What selection made of a day.

    Attributes:
        insights: The model's picks, best first.
        runners_up: Every other candidate and key point, with why it was left.
        key_points: Every key point's fate (``--explain``).
        others: The grounded candidates shown to selection and not picked, in the order selection saw
            them, each as its lead claim with its quotes.
    """

    insights: list[Insight]
    runners_up: list[RunnerUp]
    key_points: list[KeyPointTrace]
    others: list[Insight]


@dataclass
class _Candidate:
    id: int
    points: list[KeyPoint]
    vector: np.ndarray
    score: float = 0.0
    novelty: float = 1.0
    sent_before: str = ""  # the closest thing an earlier digest sent, when it may be the same story
    rejected: str = ""
    reason: str = ""

    @property
    def shows(self) -> list[str]:
        return sorted({m.quotes[0].show for m in self.points})

    @property
    def quotes(self) -> list[Quote]:
        """Every member's quotes, each passage once."""
        seen: dict[tuple[str, float], Quote] = {}
        for m in self.points:
            for q in m.quotes:
                seen.setdefault((q.episode, q.start), q)
        return list(seen.values())


def select(client: LlmClient, day: Day, embedder: Embedder, extractive: Callable[[int], list[Insight]]) -> Selection:
    """The day's insights picked by the model, and what became of the rest; ``extractive(episode_id)``
    gives the ranker's best statements of an episode whose map answer stays malformed."""
    points: list[KeyPoint] = []
    lost: list[KeyPoint] = []
    for ep in day.episodes:
        try:
            found, dropped = map_episode(client, ep, day)
        except MalformedAnswer as exc:
            log.warning("episode %d: the model's key points stayed malformed (%s); using extracted claims", ep.id, exc)
            found, dropped = [_point(i, ep) for i in extractive(ep.id)], []
        points += found
        lost += dropped
    candidates = reduce(client, points, embedder) if points else []
    _judge_novelty(candidates, day)
    chosen, shown = _pick(client, candidates, day)
    insights = [_write(client, c, day, n) for n, c in enumerate(chosen, 1)]
    others = [_insight(c, day, 0, c.points[0].claim, c.quotes) for c in shown if c not in chosen and not c.rejected]
    runners_up = [
        RunnerUp(c.points[0].claim, len(c.shows), c.score, c.rejected or "not among the model's picks")
        for c in candidates
        if c not in chosen
    ]
    runners_up += [RunnerUp(p.claim, 1, 0.0, p.fate) for p in lost]
    trace = [KeyPointTrace(p.claim, p.quotes[0].show if p.quotes else "", p.fate) for p in points + lost]
    return Selection(insights, runners_up[:20], trace, others)


def _point(insight: Insight, ep: Episode) -> KeyPoint:
    return KeyPoint(insight.statement, ep.id, ep.feed_id, insight.quotes[:1], fate="extracted (map answer malformed)")


def transcript_lines(segments: list[Segment]) -> list[tuple[str, str | None]]:
    """Each segment as a prompt line ``[h:mm:ss] Speaker: text``, with the speaker in effect at that line."""
    lines, speaker = [], None
    for s in segments:
        speaker = s.speaker or speaker
        label = f"{s.speaker}: " if s.speaker else ""
        lines.append((f"[{stamp(s.start)}] {label}{' '.join(s.text.split())}", speaker))
    return lines


def parts_of(segments: list[Segment], budget: int) -> list[str]:
    """The transcript in parts of about ``budget`` characters. A later part opens with the last lines of the
    part before, marked as context, and its first new line names its speaker."""
    lines = transcript_lines(segments)
    cuts = _cut([text for text, _ in lines], budget)
    parts, at = [], 0
    for cut in cuts:
        text = "\n".join(cut)
        if at:
            before: list[str] = []
            size = 0
            for line, _ in reversed(lines[:at]):
                if before and size + len(line) > OVERLAP_CHARS:
                    break
                before.insert(0, line)
                size += len(line)
            first, speaker = lines[at]
            if speaker and not segments[at].speaker:
                bracket = first.index("] ") + 2
                text = f"{first[:bracket]}{speaker} (continuing): {first[bracket:]}" + text[len(first) :]
            text = "(The end of the part before, for context:)\n" + "\n".join(before) + "\n(This part:)\n" + text
        parts.append(text)
        at += len(cut)
    return parts


def map_episode(client: LlmClient, ep: Episode, day: Day) -> tuple[list[KeyPoint], list[KeyPoint]]:
    """The key points of one episode with their grounded quotes, and the points dropped as ungrounded."""
    segments = day.segments[ep.id]
    transcript = Transcript(segments)
    budget = max(2000, (client.config["llm.context_tokens"] - ANSWER_TOKENS - PROMPT_TOKENS) * CHARS_PER_TOKEN)
    where = day.info[ep.id]
    found: list[KeyPoint] = []
    lost: list[KeyPoint] = []
    whole = [f"{s.speaker or ''}: {s.text}" for s in segments]
    queue = list(enumerate(parts_of(segments, budget), 1))
    total = len(queue)
    while queue:
        n, part = queue.pop(0)
        values = {"show": where.show, "episode": where.episode, "part": n, "parts": total, "transcript": part}
        messages = prompt("map", **values, max_points=POINTS_PER_PART)
        try:
            answer = client.chat_json(messages, schema("map"), max_tokens=ANSWER_TOKENS)
        except ContextTooLong as exc:
            lines = part.split("\n")
            if len(lines) < 2:
                log.warning("episode %d: one transcript line does not fit the context; skipped (%s)", ep.id, exc)
                continue
            log.info("episode %d part %d does not fit the context; halving it", ep.id, n)
            half = len(lines) // 2
            queue[:0] = [(n, "\n".join(lines[:half])), (n, "\n".join(lines[half:]))]
            continue
        for item in answer["key_points"][:POINTS_PER_PART]:
            quotes, why = [], ""
            for q in item["quotes"]:
                passage, why = transcript.locate(q["text"], seconds(q["start"]))
                claim_id = _statement_at(day.statements.get(ep.id, []), passage.start) if passage else None
                if passage and claim_id:
                    url = audio_link(where.audio_url, passage.start)
                    quotes.append(Quote(passage.text, where.show, where.episode, passage.start, url, claim_id))
            point = KeyPoint(" ".join(item["claim"].split()), ep.id, ep.feed_id, quotes)
            if not quotes:
                point.fate = f"ungrounded: {why or 'no quotes'}"
                log.info("episode %d: key point dropped, %s: %r", ep.id, point.fate, point.claim)
                lost.append(point)
                continue
            if all(q.claim_id in {o.claim_id for p in found for o in p.quotes} for q in quotes):
                continue  # the same passages found again in the overlap of two parts
            point.sources, point.named = _sources(segments, quotes, where), whole
            _check_facts(client, point, segments)
            found.append(point)
    return found, lost


def _sources(segments: list[Segment], quotes: list[Quote], where: ClaimInfo) -> list[str]:
    """What a claim about these quotes may draw names and numbers from: the episode's text within
    :data:`FACT_WINDOW` seconds of a quote, with its speakers, and the episode's and show's titles."""
    near = [s for s in segments if any(abs(s.start - q.start) <= FACT_WINDOW for q in quotes)]
    return [where.show, where.episode, *(f"{s.speaker or ''}: {s.text}" for s in near)]


def _check_facts(client: LlmClient, point: KeyPoint, segments: list[Segment]) -> None:
    """Hold the claim to its sources: restated once by the model when it fails, else replaced by its best quote."""
    reason = unsupported(point.claim, point.sources, point.named)
    if reason is None:
        return
    transcript = "\n".join(
        text
        for text, _ in transcript_lines(
            [s for s in segments if any(abs(s.start - q.start) <= 60 for q in point.quotes)]
        )
    )
    try:
        answer = client.chat_json(
            prompt("restate", claim=point.claim, problem=reason, transcript=transcript),
            schema("restate"),
            max_tokens=200,
        )
        restated = " ".join(str(answer["claim"]).split())
    except (MalformedAnswer, ContextTooLong) as exc:
        restated = ""
        log.info("restating %r failed: %s", point.claim, exc)
    if restated and unsupported(restated, point.sources, point.named) is None:
        point.fate = f"restated ({reason})"
        point.claim = restated
    else:
        point.fate = f"claim replaced by its best quote ({reason})"
        point.claim = point.quotes[0].text
    log.info("key point %s: %r", point.fate, point.claim)


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
            others = [{"show": p.quotes[0].show, "claim": p.claim} for p in (points[j] for j in proposals)]
            messages = prompt("agree", point={"show": point.quotes[0].show, "claim": point.claim}, candidates=others)
            try:
                agree = client.chat_json(messages, schema("agree"), max_tokens=100)["agree"]
            except (MalformedAnswer, ContextTooLong) as exc:
                log.info("agreement check failed (%s); keeping %r on its own", exc, point.claim)
                agree = []
            for n in dict.fromkeys(agree):
                if 1 <= n <= len(proposals) and proposals[n - 1] not in used:
                    used.add(proposals[n - 1])
                    members.append(points[proposals[n - 1]])
        candidate = _Candidate(len(candidates) + 1, members, vectors[i])
        for m in members:
            m.fate += f"; candidate {candidate.id}" + (
                f", said on {len(candidate.shows)} shows" if len(members) > 1 else ""
            )
        candidates.append(candidate)
    return candidates


def _judge_novelty(candidates: list[_Candidate], day: Day) -> None:
    """Novelty against what was heard before the digest's date. A candidate that repeats a point already sent
    (:data:`SAME_POINT_SENT`) is dropped; one merely close to it (``rank.novelty_threshold``) goes to
    selection with what was sent, for the model to judge whether it is a new development of the story.
    Each candidate's score is the offline ranker's best for the statements it quotes."""
    if not candidates:
        return
    claims = np.stack([c.vector for c in candidates])
    heard = max_similarity(claims, day.context.heard)
    sent = day.context.sent if day.context.sent is not None else np.zeros((0, claims.shape[1]), dtype=np.float32)
    sims = claims @ sent.T
    for c, h, row in zip(candidates, heard, sims):
        c.novelty = round(float(np.clip(1 - h, 0, 1)), 4)
        c.score = round(max((day.scores.get(q.claim_id, -10.0) for q in c.quotes), default=-10.0), 4)
        closest = int(np.argmax(row)) if len(row) else -1
        s = float(row[closest]) if len(row) else 0.0
        if s >= SAME_POINT_SENT:
            c.rejected = f"already sent in an earlier digest (similarity {s:.2f})"
            for m in c.points:
                m.fate += f"; {c.rejected}"
        elif s >= day.settings.novelty_threshold and closest < len(day.sent):
            c.sent_before = day.sent[closest]


def _entry(c: _Candidate) -> dict:
    """A candidate as selection reads it: its claims and every quote, each with its show."""
    return {
        "id": c.id,
        "claims": [{"show": m.quotes[0].show, "claim": m.claim} for m in c.points],
        "shows": c.shows,
        "novelty": c.novelty,
        "sent_before": c.sent_before,
        "quotes": [{"show": q.show, "text": q.text} for q in c.quotes],
    }


def _pick(client: LlmClient, candidates: list[_Candidate], day: Day) -> tuple[list[_Candidate], list[_Candidate]]:
    """The model's picks among the open candidates, best first, each a distinct story; and the candidates
    shown to it, in the order it saw them."""
    open_ = sorted((c for c in candidates if not c.rejected), key=lambda c: (-len(c.shows), -c.score, c.id))
    budget = (client.config["llm.context_tokens"] - PROMPT_TOKENS - 600) * CHARS_PER_TOKEN
    shown: list[_Candidate] = []
    entries: list[dict] = []
    size = 0
    for c in open_:
        entry = _entry(c)
        size += len(str(entry))
        if size > budget:
            c.rejected = "not shown to selection: the context was full"
            continue
        shown.append(c)
        entries.append(entry)
        for m in c.points:
            m.fate += "; shown to selection"
    if not shown:
        return [], []
    top_k = day.settings.top_k
    try:
        answer = client.chat_json(prompt("select", candidates=entries, top_k=top_k), schema("select"), max_tokens=800)
    except (MalformedAnswer, ContextTooLong) as exc:
        raise LlmUnavailable(f"the selection answer was unusable: {exc}") from None
    by_id = {c.id: c for c in open_ if not c.rejected}
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
        for m in c.points:
            m.fate += f"; picked #{len(chosen)}"
        if len(chosen) == top_k:
            break
    return chosen, shown


def _write(client: LlmClient, c: _Candidate, day: Day, rank_no: int) -> Insight:
    """The pick as an insight: the model's headline when its every name and number stands in the episodes
    near the quotes (else the lead claim), with the quotes the model says support it."""
    sources = [text for m in c.points for text in m.sources]
    named = [text for episode in {m.episode_id: m.named for m in c.points}.values() for text in episode]
    claim = c.points[0].claim
    text, quotes = claim, c.quotes
    numbered = [{"n": n, "show": q.show, "text": q.text} for n, q in enumerate(quotes, 1)]
    claims = [{"show": m.quotes[0].show, "claim": m.claim} for m in c.points]
    try:
        answer = client.chat_json(prompt("write", claims=claims, quotes=numbered), schema("write"), max_tokens=400)
        written = " ".join(str(answer["headline"]).split()).strip('"“”')
        if reason := unsupported(written, sources, named):
            log.info("insight %r: the written headline was dropped (%s); keeping the claim", claim, reason)
        elif written:
            text = written
        backing = [quotes[n - 1] for n in dict.fromkeys(answer.get("quotes") or []) if 1 <= n <= len(quotes)]
        quotes = backing or quotes
    except (MalformedAnswer, ContextTooLong) as exc:
        log.info("insight %r: writing failed (%s); keeping the claim", claim, exc)
    return _insight(c, day, rank_no, text, quotes)


def _insight(c: _Candidate, day: Day, rank_no: int, text: str, quotes: list[Quote]) -> Insight:
    """A candidate as an insight headed ``text``: one of ``quotes`` per stored statement, and the claim ids of
    every statement of the day that tells its story."""
    first: dict[int, Quote] = {}
    for q in quotes:
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
        statement=c.points[0].claim,
        shows=len({m.feed_id for m in c.points}),
        episodes=len({m.episode_id for m in c.points}),
        novelty=c.novelty,
        salience=0.0,
        score=c.score,
        quotes=quotes,
        claim_ids=quote_ids + story,
        show_names=c.shows,
        reason=c.reason,
    )
