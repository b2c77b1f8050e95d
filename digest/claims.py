"""Cut transcripts into self-contained statements and drop what is not a claim, saying why.

A statement is one to three consecutive sentences of one speaker turn. A sentence that
leans on the one before it ("It…", "Because…", "Or…", "The second, …", a short fragment,
"he" or "her" before any name, or the rest of a quotation the one before opened) extends the
statement before it; one that cannot (it opens a turn, or the statement before it is full or
dropped) cannot be understood alone and is dropped.
Chatter is dropped sentence by sentence, whatever its position: small talk, reactions,
jokes, questions, talk about the show itself, and sponsor reads, which run from their
cue to the end of the speaker's turn (or of the cue's segment when no speaker is named).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from digest.features import first_name
from digest.models import Claim, Segment

MIN_WORDS = 6
MAX_WORDS = 70
MAX_SENTENCES = 3
AD_SENTENCES = 8  # a sponsor read runs from its cue to the end of the turn, but no further than this
TURN_PAUSE = 1.5  # seconds of silence that end a turn when the transcript names no speakers
EDGE_SENTENCES = 12  # intros and outros live in the first and last sentences of an episode
_SENTENCE_END = re.compile(
    r"(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bvs\.)(?<!\be\.g\.)(?<!\bi\.e\.)"
    r"(?<=[.!?…])([\"')\]”]*)\s+(?=[\"'(\[“]?[A-Za-z0-9$])"
)
_AD = re.compile(
    r"brought to you by|sponsored by|our sponsors?\b|sponsored news|thanks? (?:to )?\S+ for sponsoring"
    r"|promo code|discount code|use (?:the )?code\b|percent off|% off|free trial|\bsign up (?:today|now)\b"
    r"|(?:visit|go to|head to|check out) \S+\.(?:com|io|net|org|dev|ai)\b|\S+\.(?:com|io|net|org) slash \w+"
    r"|support for (?:this|the) (?:show|podcast) comes from|ships free|free shipping|money.back guarantee"
    r"|order (?:now|today)|limited time offer|our partners? at|fastly|fly\.io|linode|rollbar",
    re.IGNORECASE,
)
_QUESTION = re.compile(
    r"\?\W*$|^\W*(?:(?:and|but|so|well|okay|now),? )?(?:i(?:'m| am) curious|i wonder|i'?d love to (?:know|hear)"
    r"|tell (?:me|us)|can you (?:tell|talk|explain)"  # a question the transcript wrote without its mark:
    r"|(?:how|what|why) (?:do|did|would|does) you (?:feel|think)|(?:do|did) you (?:think|feel|ever)"
    r"|have you (?:ever|seen|heard|tried))\b",
    re.IGNORECASE,
)
_SMALL_TALK = re.compile(
    r"\b(?:hi|hello|hey) (?:everyone|everybody|folks|friends|there|y'all)\b|^\W*(?:hi|hello|hey|welcome|bye)\b"
    r"|\bgood (?:morning|evening|afternoon|to (?:see|have|be|talk))\b|\bhow are (?:you|things)\b|\bhappy new year\b"
    r"|\bthanks? (?:you )?(?:so much |very much |again )?(?:for (?:having|coming|joining|listening|being)|everyone)\b"
    r"|^\W*thank(?:s| you)\b|\b(?:great|good|nice|fun|pleasure|happy) (?:to be|being) (?:here|on|back)\b|\bsee you\b"
    r"|\buntil next time\b|\btake care\b|\bhave a (?:good|great|nice) (?:one|day|week|weekend)\b|\bcheers\b"
    r"|\bmy pleasure\b|\bappreciate (?:it|you|that)\b|\bhow'?s it going\b|\bwhat'?s up\b|\bwhat up\b"
    r"|\b(?:congrats|congratulations|kudos|shout.?outs?) to\b",
    re.IGNORECASE,
)
_META = re.compile(
    r"\b(?:this|the|our|that|today's|next|last|previous|a future|an upcoming) (?:episode|show|podcast|interview|conversation|recording|segment|newsletter)\b"
    r"|\b(?:on|in|to) (?:the|this) (?:show|pod|podcast)\b|\bshow notes\b|\blisteners?\b|\bsubscribe\b|\brate and review\b"
    r"|\bwe'?(?:ll| will) (?:link|put|include|have)\b|\blink (?:to )?(?:it|that|them) (?:up|in)\b|\blet'?s (?:get into|dive|talk|jump|start|kick|go|do|move|hear|bring)\b"
    r"|\bi'?m (?:your host|joined by|here with)\b|\bjoining (?:me|us)\b|\bour guest\b|\bwe'?re here with\b|\bright back\b"
    r"|\bafter the break\b|\bcoming up\b|\bstick around\b|\bon air\b|\bwe'?re recording\b|\bwe recorded\b|\brecord(?:ing)? (?:this|on)\b"
    r"|\b(?:twitter|mastodon|discord|slack|patreon|youtube channel)\b|\bchangelog\+\+|\bplusplus\b|\bbonus\b|\bmerch\b"
    r"|\bchangelog\.com\b|\bthat'?s (?:all|it) for\b|\bthat'?s our show\b|\bwelcome (?:back )?to\b|\bthis is \w+ (?:news|weekly|radio|daily)\b"
    r"|\bfor the week of\b|\bwhat up,? nerds\b"
    r"|\b(?:we(?:'re| are)|i(?:'m| am)) (?:going to|gonna) (?:talk|chat|dig|dive|get) (?:about|into)\b"  # what's to come
    r"|\bwhat we(?:'re| are) (?:talking|going to talk|gonna talk) about (?:today|here)\b"
    r"|\btoday,? we(?:'re| are|'ll| will) (?:talk|chat|discuss|look|dig|dive)",
    re.IGNORECASE,
)
_REACTION_WORDS = (
    r"yeah|yes|yep|yup|no|nope|nah|right|exactly|totally|absolutely|definitely|sure|okay|ok|oh|wow|huh|hmm|mm|mhm|uh|um"
    r"|cool|nice|great|awesome|amazing|interesting|true|fair|indeed|well|so|and|but|man|gosh|god|goodness|haha|ha|lol"
    r"|agreed|agree|i|me|too|that|that's|thats|it|it's|is|was|a|an|the|good|point|crazy|funny|wild|fun|love|like|fascinating"
    r"|for|sure|of|course|really|very|pretty|super|just|what|hilarious|ouch|yikes|whoa|gotcha|makes|sense|correct"
    r"|impressive|incredible|insane|brilliant|perfect|beautiful|exciting|neat|sweet|stuff|way|my|there|you|go"
    r"|no idea|i have|don't know|dunno|significant|huge|big|nuts|excellent|lovely|tough|yay|woo|hoo|woohoo|to them"
    r"|good for them|bravo|nice one|ha-ha|heh|whatever|anyway|here we go"
)
_REACTION = re.compile(rf"^(?:\W*\b(?:{_REACTION_WORDS})\b)+\W*$", re.IGNORECASE)
_LAUGHTER = r"laughs?|laughter|laughing|chuckles?"
_SOUND = re.compile(  # what was heard rather than said: laughter, crosstalk, music and sound effects
    rf"\[(?:{_LAUGHTER}|crosstalk|applause|music|jingle|rimshot|soundboard|sound effects?)\b[^\]]*\]", re.IGNORECASE
)
_GAP = re.compile(r"[\[(](?:inaudible|unintelligible)[^\])]*[\])]", re.IGNORECASE)  # words nobody could make out
_JOKE = re.compile(rf"\[(?:{_LAUGHTER}|rimshot)\b[^\]]*\]\W*$", re.IGNORECASE)  # a closing laugh or rimshot
_LEANS_BACK = re.compile(
    r"^\W*(?:it|it's|its|this|that|that's|these|those|they|they're|them|he|she|he's|she's|which|because|cause|'cause"
    r"|inaudible|unintelligible|also|then|plus|though|otherwise|instead|anyway|again|same|or"
    r"|(?:of|from|among|out of) (?:that|those|these|them|which)"  # "Of that, 80%…" splits a total said before
    r"|(?:(?:and|so),? (?:then,? )?)?the (?:second|third|fourth|fifth|last|other)(?=,| (?:one|thing|point|reason|is)\b)"
    r"|secondly|thirdly)\b",  # "The second, as you say, is…": an item of a list begun before
    re.IGNORECASE,
)


_PERSON = re.compile(r"\b(?:he|him|his|she|her|hers|he's|she's|he'd|she'd|he'll|she'll)\b", re.IGNORECASE)


def _open_quote(statement: list[Sentence]) -> bool:
    """Whether a quotation opened in ``statement`` is still open at its end: the next sentence goes on quoting."""
    text = " ".join(s.text for s in statement)
    return text.count('"') % 2 == 1 or text.count("“") > text.count("”")


def _leans_back(text: str) -> bool:
    """Whether a sentence cannot be read without the one before: it opens by pointing back ("It…",
    "Because…"), or names a person as he or she before naming anyone."""
    if _LEANS_BACK.match(text):
        return True
    person = _PERSON.search(text)
    return person is not None and person.start() < first_name(text)


@dataclass
class Sentence:
    """One sentence, timed by the segments it spans, with the speaker turn it belongs to."""

    text: str
    start: float
    end: float
    turn: int = 0
    speaker: str | None = None
    segment: int = 0  # where it starts, counted over the whole transcript


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def turns(segments: list[Segment]) -> list[list[Segment]]:
    """Segments grouped into speaker turns: a turn ends where the named speaker changes or at a pause."""
    grouped: list[list[Segment]] = []
    for seg in segments:
        if not seg.text.strip():
            continue
        prev = grouped[-1][-1] if grouped else None
        if prev is None:
            grouped.append([seg])
        elif seg.speaker != prev.speaker or seg.start - prev.end > TURN_PAUSE:
            grouped.append([seg])
        else:
            grouped[-1].append(seg)
    return grouped


def sentences(segments: list[Segment]) -> list[Sentence]:
    """Split segments into sentences within each speaker turn, each timed by where its characters
    fall in the segments: a sentence that spans segments starts in the first and ends in the last;
    inside a segment, time is interpolated by character position."""
    found: list[Sentence] = []
    count = 0
    for turn_no, turn in enumerate(turns(segments)):
        text, spans = "", []
        for seg in turn:
            piece = seg.text.strip()
            if text:
                text += " "
            spans.append((len(text), len(text) + len(piece), seg.start, seg.end, count))
            text += piece
            count += 1

        def at(pos: int, spans: list = spans) -> tuple[float, int]:
            for lo, hi, start, end, number in spans:
                if pos < hi:
                    return start + (end - start) * max(0, pos - lo) / max(1, hi - lo), number
            return spans[-1][3], spans[-1][4]

        begin = 0
        for match in [*_SENTENCE_END.finditer(text), None]:
            stop = match.end(1) if match else len(text)  # closing quotes and brackets end the sentence too
            chunk = text[begin:stop].strip()
            if chunk:
                (start, number), (end, _) = at(begin), at(max(begin, stop - 1))
                found.append(Sentence(chunk, round(start, 2), round(end, 2), turn_no, turn[0].speaker, number))
            if match:
                begin = match.end()
    return found


def _signature(text: str) -> frozenset[str]:
    return frozenset(words(text))


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    return len(a) >= 3 and len(b) >= 3 and len(a & b) / len(a | b) >= 0.5


def boilerplate_signatures(other_episodes: Iterable[list[Segment]]) -> list[frozenset[str]]:
    """Word sets of the intro and outro sentences of a show's other episodes."""
    sigs: list[frozenset[str]] = []
    for segs in other_episodes:
        parts = [p.text for p in sentences(segs)]
        edge = parts[:EDGE_SENTENCES] + parts[-EDGE_SENTENCES:]
        sigs.extend(_signature(p) for p in edge)
    return sigs


def why_not_a_claim(text: str, boilerplate: list[frozenset[str]] | None = None) -> str | None:
    """The reason a sentence is not a claim, or ``None`` when it may be one."""
    if _AD.search(text):
        return "ad"
    if boilerplate and any(_similar(_signature(text), sig) for sig in boilerplate):
        return "boilerplate"
    if _JOKE.search(text):
        return "joke"
    bare = _GAP.sub(" ", _SOUND.sub(" ", text))
    if _REACTION.match(bare):
        return "reaction"
    if _QUESTION.search(bare):
        return "question"
    if _SMALL_TALK.search(bare):
        return "small talk"
    if _META.search(bare):
        return "about the show"
    return None


def _display(text: str) -> str:
    """The statement as shown: laughter and sound effects left out, a gap in the speech marked "…"."""
    return " ".join(_GAP.sub(" … ", _SOUND.sub(" ", text)).split())


def extract(
    episode_id: int, feed_id: int, segments: list[Segment], other_episodes: Iterable[list[Segment]] = ()
) -> list[Claim]:
    """Statements of one episode, dropped ones included with their reason.

    Args:
        episode_id: The episode the segments belong to.
        feed_id: Its show.
        segments: The episode's transcript.
        other_episodes: Transcripts of the same show's other episodes; sentences that
            recur in their intros and outros are dropped as boilerplate.
    """
    boilerplate = boilerplate_signatures(other_episodes)
    parts = sentences(segments)
    groups: list[tuple[list[Sentence], str | None]] = []
    ad: Sentence | None = None
    for i, s in enumerate(parts):
        edge = i < EDGE_SENTENCES or i >= len(parts) - EDGE_SENTENCES
        reason = why_not_a_claim(s.text, boilerplate if edge else [])
        if reason == "ad":
            ad, ad_start = s, i
        elif ad and _in_sponsor_block(ad, s, i - ad_start):
            reason = "ad"
        current = groups[-1] if groups else None
        same_turn = current is not None and current[0][-1].turn == s.turn
        if reason:
            groups.append(([s], reason))
            continue
        if current and same_turn and current[1] is None and _extends(current[0], s):
            current[0].append(s)
            continue
        quoting = current is not None and same_turn and _open_quote(current[0])
        if _leans_back(s.text) or quoting:  # it could not join the statement before it, so it would stand alone
            reason = "needs context"
        groups.append(([s], reason))
    claims = []
    for members, reason in groups:
        text = _display(" ".join(m.text for m in members))
        if reason is None and len(words(text)) < MIN_WORDS:
            reason = "fragment"
        claims.append(
            Claim(0, episode_id, feed_id, text, members[0].start, members[-1].end, reason, members[0].speaker)
        )
    return claims


def _in_sponsor_block(cue: Sentence, s: Sentence, after: int) -> bool:
    """Whether a sentence continues the sponsor read that ``cue`` opened: to the end of a named speaker's
    turn (at most ``AD_SENTENCES``); without speaker names, to the end of the cue's segment."""
    if s.turn != cue.turn or after >= AD_SENTENCES:
        return False
    return cue.speaker is not None or s.segment == cue.segment


def _extends(statement: list[Sentence], nxt: Sentence) -> bool:
    """Whether ``nxt`` belongs with the statement before it: it leans back, it goes on with a quotation the
    statement opened, or one of them is a fragment."""
    count = sum(len(words(s.text)) for s in statement)
    if len(statement) >= MAX_SENTENCES or count + len(words(nxt.text)) > MAX_WORDS:
        return False
    return _leans_back(nxt.text) or _open_quote(statement) or count < MIN_WORDS or len(words(nxt.text)) < MIN_WORDS
