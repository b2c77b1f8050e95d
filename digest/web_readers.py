"""The pages of a reader's own digest, reached from signed links in their mail: preferences ("Choose what you
get") and "more/less like this" (a GET asks, a POST records)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest import signing
from digest.deliver import feedback_purpose
from digest.errors import NotFoundError
from digest.models import Subscriber, SubscriberStatus
from digest.readers import COUNTS, FREQUENCIES, Preferences

if TYPE_CHECKING:
    from digest.web import App, Request, Response

FEEDBACK = r"/feedback/(more|less)/(\d{4}-\d{2}-\d{2})/(\d+)/([\w.-]+)"
_MAX_INTERESTS, _MAX_INTEREST_CHARS = 5, 80


class ReaderPages:
    """The views of the preferences and feedback pages, over the application's store and templates."""

    def __init__(self, app: App):
        self.app = app

    def reader(self, purpose: str, token: str) -> Subscriber:
        """The active subscriber a preferences or feedback link was signed for, if it has not expired and
        was not revoked."""
        email, issued = signing.verify_expiring(
            self.app.config,
            purpose,
            token,
            self.app.config["web.link_ttl"] * 86400,
            "this link has expired; the next digest has a fresh one",
        )
        try:
            sub = self.app.store.subscriber(email)
        except NotFoundError:
            sub = None
        if sub is None or sub.status is not SubscriberStatus.ACTIVE:
            raise signing.BadToken(f"{email} is not subscribed")
        if issued < self.app.store.links_revoked(sub.id):
            raise signing.BadToken("this link was revoked; the next digest has a fresh one")
        return sub

    def preferences_form(self, request: Request, token: str, message: str | None = None, status: int = 200) -> Response:
        sub = self.reader("preferences", token)
        nonce, csrf = self.app.csrf_pair()
        prefs = self.app.store.preferences(sub.id)
        response = self.app.page(
            status,
            "web_preferences.html.j2",
            email=sub.email,
            action=f"/preferences/{token}",
            csrf=csrf,
            feeds=self.app.store.feeds(),
            chosen=prefs.feed_ids,
            interests="\n".join(prefs.interests),
            count=prefs.count or self.app.config["rank.top_k"],
            counts=COUNTS,
            frequency=prefs.frequency,
            frequencies=FREQUENCIES,
            weekly_day=self.app.config["readers.weekly_day"],
            message=message,
        )
        response.headers["Set-Cookie"] = f"csrf={nonce}; Path=/; HttpOnly; SameSite=Strict"
        return response

    def preferences(self, request: Request, token: str) -> Response:
        sub = self.reader("preferences", token)
        if not self.app.csrf_ok(request):
            return self.preferences_form(request, token, "The form expired; please try again.", status=403)
        feeds = [f.id for f in self.app.store.feeds()]
        chosen = [f for f in feeds if request.form.get(f"show-{f}")]
        interests = [
            line.strip()[:_MAX_INTEREST_CHARS]
            for line in request.form.get("interests", "").splitlines()
            if line.strip()
        ][:_MAX_INTERESTS]
        count = int(c) if (c := request.form.get("count", "")).isdigit() and int(c) in COUNTS else None
        frequency = f if (f := request.form.get("frequency", "")) in FREQUENCIES else "daily"
        vectors = self.app.embedder().embed(interests) if interests else None
        shows = None if not chosen or len(chosen) == len(feeds) else chosen
        prefs = Preferences(shows, interests, vectors, count, frequency)
        self.app.store.save_preferences(sub.id, prefs)
        return self.preferences_form(request, token, "Saved. Your next digest follows these choices.")

    def feedback_form(self, request: Request, direction: str, day: str, position: str, token: str) -> Response:
        self.reader(feedback_purpose(direction, day, int(position)), token)
        candidates = {c.position: c for c in self.app.store.candidates(day)[0]}
        if int(position) not in candidates:
            raise NotFoundError(f"no insight {position} in the digest of {day}")
        return self.app.form_page(
            200,
            f"{direction.capitalize()} like this",
            message=f"Send you {direction} insights like “{candidates[int(position)].insight.text}”?",
            action=request.path,
            button=f"Yes, {direction} like this",
        )

    def feedback(self, request: Request, direction: str, day: str, position: str, token: str) -> Response:
        """A click's POST: the signed link is the authority (a GET only asks, so mail scanners change nothing)."""
        sub = self.reader(feedback_purpose(direction, day, int(position)), token)
        picked = self.app.store.record_click(sub.id, day, int(position), 1 if direction == "more" else -1)
        return self.app.form_page(
            200, "Thanks", message=f"Noted: {direction} like “{picked.insight.text}” from your next digest on."
        )

    def actions(self, request: Request, day: str, rank: int) -> list[tuple[str, str]]:
        """For a reader who came from their mail (its link carries their signed feedback tokens): the
        "more/less like this" buttons' labels and form actions; none for anyone else."""
        at, actions = request.query.get("at", ""), []
        if at != f"{day}:{rank}":
            return []
        for direction in ("more", "less"):
            token = request.query.get(direction, "")
            try:
                self.reader(feedback_purpose(direction, day, rank), token)
            except signing.BadToken:
                return []
            actions.append((f"{direction.capitalize()} like this", f"/feedback/{direction}/{day}/{rank}/{token}"))
        return actions
