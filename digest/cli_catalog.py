"""The catalogue commands of ``digest``: feeds, episodes and transcripts, subscribers, the signing key,
the model server check and the Whisper export. Registered on :data:`digest.cli.cli` when it loads."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli import DATE, App, cli, emit_json, pass_app, print_listing
from digest.errors import DigestError
from digest.models import Status, SubscriberStatus
from digest.render import clock


@cli.group()
def subscribers() -> None:
    """Add, list, show, export and remove email subscribers."""


@subscribers.command("add")
@click.argument("emails", nargs=-1, required=True)
@pass_app
def subscribers_add(app: App, emails: tuple[str, ...]) -> None:
    """Subscribe addresses to the daily email."""
    from digest.deliver import validate_address

    for email in emails:
        sub, changed = app.store.add_subscriber(validate_address(email))
        click.echo(f"{'Subscribed' if changed else 'Already subscribed'}: {sub.email}")


@subscribers.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include pending and unsubscribed addresses.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def subscribers_list(app: App, show_all: bool, as_json: bool) -> None:
    """List subscribers."""
    print_listing(
        app.store.subscribers(None if show_all else SubscriberStatus.ACTIVE),
        as_json,
        "No subscribers yet: `digest subscribers add EMAIL`." if show_all else "No active subscribers.",
        f"{'ID':>4}  {'STATUS':<12} EMAIL",
        lambda s: f"{s.id:>4}  {s.status:<12} {s.email}",
    )


@subscribers.command("remove")
@click.argument("email")
@pass_app
def subscribers_remove(app: App, email: str) -> None:
    """Remove a subscriber and their delivery history."""
    click.echo(f"Removed {app.store.remove_subscriber(email).email}")


@subscribers.command("show")
@click.argument("email")
@click.option("--date", "date_", type=DATE, help="Which digest's picks (default: the latest).")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def subscribers_show(app: App, email: str, date_: str | None, as_json: bool) -> None:
    """A subscriber's settings, and their picks of a digest with why each was chosen."""
    from digest.readers import ReaderDay

    store = app.store
    sub = store.subscriber(email)
    prefs = store.preferences(sub.id)
    titles = {f.id: f.title or f.url for f in store.feeds()}
    shows = "all" if prefs.feed_ids is None else [titles.get(f, f"feed {f}") for f in prefs.feed_ids]
    day = ReaderDay.load(app.config, store, store.digest(date_))
    picks, fixed = day.current(store, sub.id)
    due = fixed or day.due(prefs)
    mine, _ = day.digest_for(picks)
    why = {i.rank: p.why for i, p in zip(mine.insights, picks)}
    chosen = [{"rank": i.rank, "text": i.text, "why": why.get(i.rank, "the common digest")} for i in mine.insights]
    chosen = chosen if due else []
    data = {
        "email": sub.email,
        "status": sub.status,
        "shows": shows,
        "interests": prefs.interests,
        "count": prefs.count or app.config["rank.top_k"],
        "frequency": prefs.frequency,
        "clicks": len(store.clicks(sub.id)),
        "date": day.digest.date,
        "sent": fixed,
        "picks": chosen,
    }
    if as_json:
        emit_json(data)
        return
    click.echo(f"{sub.email} ({sub.status})")
    click.echo(f"  shows: {'all' if shows == 'all' else ', '.join(shows)}")
    click.echo(f"  interests: {', '.join(prefs.interests) or 'none'}")
    weekly_day = app.config["readers.weekly_day"]
    every = "a day" if prefs.frequency == "daily" else f"a week, on {weekly_day}s"
    click.echo(f"  insights {every}: {data['count']}; clicks: {data['clicks']}")
    state = "as sent" if fixed else "not sent yet: what they would get now" if due else f"weekly: sent on {weekly_day}s"
    click.echo(f"Picks of {day.digest.date} ({state}):")
    for p in chosen:
        click.echo(f"  {p['rank']}. {p['text']}\n      why: {p['why']}")


@subscribers.command("export")
@click.argument("email")
@pass_app
def subscribers_export(app: App, email: str) -> None:
    """Everything kept about a subscriber, as JSON: settings, clicks, what they were sent, deliveries."""
    emit_json(app.store.reader_data(app.store.subscriber(email).id))


@subscribers.command("revoke")
@click.argument("email")
@pass_app
def subscribers_revoke(app: App, email: str) -> None:
    """Make every preferences and feedback link sent to a subscriber so far stop working."""
    sub = app.store.subscriber(email)
    app.store.revoke_links(sub.id)
    click.echo(f"Revoked the links of {sub.email}; their next digest has fresh ones.")


@cli.group()
def llm() -> None:
    """The optional language model (llm.mode)."""


@llm.command("check")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def llm_check(app: App, as_json: bool) -> None:
    """Call the configured endpoint once: model, context size, latency, and whether it returns valid JSON."""
    from digest.llm.client import check

    report = check(app.config)
    if as_json:
        emit_json(report)
    else:
        context = report["context_tokens"] or f"not reported (llm.context_tokens = {app.config['llm.context_tokens']})"
        click.echo(f"Endpoint: {report['base_url']}\nModel: {report['model']}\nContext: {context}")
        click.echo(f"Latency: {report['latency_s']:.2f} s\nValid JSON: {'yes' if report['valid_json'] else 'no'}")
        if report["error"]:
            click.echo(f"  {report['error']}", err=True)
        if report["context_tokens"] and report["context_tokens"] < app.config["llm.context_tokens"]:
            click.echo(
                f"  llm.context_tokens ({app.config['llm.context_tokens']}) is more than the model's context; "
                f"set it to {report['context_tokens']} or transcripts will be cut too long",
                err=True,
            )
    if not report["valid_json"]:
        raise SystemExit(1)


@cli.group()
def model() -> None:
    """Manage the speech model."""


@model.command("export")
@click.option(
    "--out", type=click.Path(path_type=Path), help="Where to write (default: $DIGEST_HOME/models/tiny.en.pt)."
)
@click.option("--int8", is_flag=True, help="Per-row int8 large matrices: about 40 MB instead of 75 MB.")
@pass_app
def model_export(app: App, out: Path | None, int8: bool) -> None:
    """Turn the bundled CTranslate2 tiny.en into an openai-whisper (PyTorch) checkpoint."""
    from digest.asr.faster_whisper import bundled_asr_model
    from digest.asr.torch.export import export

    path = export(Path(bundled_asr_model()), out or app.config.home / "models" / "tiny.en.pt", int8=int8)
    click.echo(f'Wrote {path} ({path.stat().st_size / 1e6:.0f} MB); use it with asr.backend = "openai-whisper"')


@cli.group()
def feeds() -> None:
    """Add, list, remove, import and export followed feeds."""


@feeds.command("add")
@click.argument("urls", nargs=-1, required=True)
@pass_app
def feeds_add(app: App, urls: tuple[str, ...]) -> None:
    """Follow one or more feed URLs, each fetched once to check it (a URL without a scheme tries https://)."""
    from digest.feeds import check_url, probe

    failed = 0
    for url in urls:
        try:
            found, parsed = probe(check_url(url), app.config)
        except DigestError as exc:
            click.secho(f"Not added: {exc}", fg="red", err=True)
            failed += 1
            continue
        feed, created = app.store.add_feed(found)
        what = f"{parsed.title or 'untitled'}, {len(parsed.episodes)} episodes"
        click.echo(f"{'Added' if created else 'Already following'} feed {feed.id}: {what} ({feed.url})")
    if failed:
        raise SystemExit(1)


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def feeds_list(app: App, as_json: bool) -> None:
    """List followed feeds and the last poll's error, if any."""

    def line(f) -> str:
        polled = f"polled {f.last_polled}" if f.last_polled else "not polled yet"
        state = f"ERROR: {f.last_error}" if f.last_error else polled
        return f"{f.id:>4}  {f.title or '-'}  {f.url}  [{state}]"

    empty = "No feeds followed yet: `digest feeds add URL`."
    print_listing(app.store.feeds(), as_json, empty, f"{'ID':>4}  TITLE  URL  [STATE]", line)


@feeds.command("remove")
@click.argument("feed")
@pass_app
def feeds_remove(app: App, feed: str) -> None:
    """Stop following a feed (by id or URL); its episodes are removed too."""
    removed = app.store.remove_feed(feed)
    click.echo(f"Removed feed {removed.id}: {removed.url}")


@feeds.command("import")
@click.argument("opml", type=click.File("rb"))
@pass_app
def feeds_import(app: App, opml) -> None:
    """Follow every feed of an OPML file: all of them, or none when one is refused (each is listed)."""
    from digest.feeds import import_opml

    added = app.store.add_feeds(import_opml(opml.read(), app.config["fetch.private_addresses"]))
    click.echo(f"Imported {added} new feeds.")


@feeds.command("export")
@pass_app
def feeds_export(app: App) -> None:
    """Print the followed feeds as OPML."""
    from digest.feeds import export_opml

    click.echo(export_opml(app.store.feeds()), nl=False)


@cli.group()
def episodes() -> None:
    """Inspect episodes."""


@episodes.command("list")
@click.option("--status", type=click.Choice([s.value for s in Status]))
@click.option("--feed", "feed_ref", help="Only this feed (id or URL).")
@click.option("--limit", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def episodes_list(app: App, status: str | None, feed_ref: str | None, limit: int | None, as_json: bool) -> None:
    """List episodes, newest first, with their pipeline state."""
    feed_id = app.store.feed(feed_ref).id if feed_ref else None

    def line(e) -> str:
        err = f"  ({e.attempts} failed: {e.error})" if e.error else ""
        when, length = (e.published or "")[:10], clock(e.duration) if e.duration else "-"
        return f"{e.id:>5}  {e.status.value:<11} {when:<10} {length:>8}  {e.show or '-'} — {e.title}{err}"

    print_listing(
        app.store.episodes(Status(status) if status else None, feed_id, limit),
        as_json,
        f"No {status + ' ' if status else ''}episodes.",
        f"{'ID':>5}  {'STATUS':<11} {'PUBLISHED':<10} {'LENGTH':>8}  SHOW — TITLE",
        line,
    )


@cli.command()
@click.argument("episode", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def transcript(app: App, episode: int, as_json: bool) -> None:
    """Print an episode's transcript with timestamps."""
    ep = app.store.episode(episode)
    segments = app.store.segments(ep.id)
    if as_json:
        emit_json(
            {"episode": ep.id, "title": ep.title, "show": ep.show, "source": ep.transcript_source, "segments": segments}
        )
        return
    if not segments:
        click.echo(f"Episode {ep.id} has no transcript yet (status: {ep.status.value}).", err=True)
    for s in segments:
        click.echo(f"[{clock(s.start)} → {clock(s.end)}] {s.text}")


@cli.group()
def secret() -> None:
    """The key that signs unsubscribe, confirmation, preferences and feedback links."""


@secret.command("rotate")
@click.confirmation_option(prompt="Every unsubscribe and confirmation link sent so far stops working. Rotate?")
@pass_app
def secret_rotate(app: App) -> None:
    """Replace $DIGEST_HOME/secret.key, e.g. after it leaked; links in mail already sent stop working."""
    from digest.signing import rotate

    rotate(app.config)
    click.echo(f"New signing key in {app.config.home / 'secret.key'}; the next digest carries new links.")
