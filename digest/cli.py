"""The ``digest`` command line: parses arguments, calls the library, prints. Nothing else. The catalogue
commands (feeds, episodes, subscribers, keys, models) live in :mod:`digest.cli_catalog`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import shlex
import shutil
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from digest import __version__
from digest.config import SETTINGS, Config, choices, default_home, load
from digest.errors import DigestError, NotFoundError
from digest.models import HitKind, SubscriberStatus
from digest.render import clock
from digest.store import Store


class App:
    """Lazily opened config and store for one CLI invocation."""

    def __init__(self, home: Path | None, quiet: bool = False):
        self.home, self.quiet = home, quiet
        self._config: Config | None = None
        self._store: Store | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load(self.home)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.config.db_path)
        return self._store

    def existing_store(self) -> Store:
        """The store, for commands that only read: they never leave an empty database in a wrong home."""
        if self._store is None and not self.config.db_path.exists():
            raise NotFoundError(self.no_data())
        return self.store

    def no_data(self) -> str:
        return (
            f"no digest data in {self.config.home} yet; run `digest run` there first, "
            "or name the data directory with --home or DIGEST_HOME"
        )


pass_app = click.make_pass_decorator(App)


class DateParam(click.ParamType):
    """A calendar date: YYYY-MM-DD, ``today`` or ``yesterday`` (in ``schedule.timezone``)."""

    name = "YYYY-MM-DD|today|yesterday"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        word = str(value).strip().lower()
        if word in ("today", "yesterday"):
            from digest.pipeline import today

            app = ctx.find_object(App) if ctx else None
            day = dt.date.fromisoformat(today(app.config if app else load()))
            return (day - dt.timedelta(days=1 if word == "yesterday" else 0)).isoformat()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", word):
                return dt.date.fromisoformat(word).isoformat()
        except ValueError:
            pass
        self.fail(f"expected a date as YYYY-MM-DD, today or yesterday, found {value!r}", param, ctx)


DATE = DateParam()


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_jsonable))


def print_listing(rows: list, as_json: bool, empty: str, header: str, line: Callable[[Any], str]) -> None:
    """A listing: its rows as JSON, else a header and a line a row, else one line saying there are none."""
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo(empty, err=True)
        return
    click.echo(header)
    for row in rows:
        click.echo(line(row))


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


_EVERYWHERE = re.compile(r"-v+|--verbose|-q|--quiet")  # flags of the group, accepted after a subcommand too


class DigestGroup(click.Group):
    """Turns domain errors into a one-line message and exit code 1."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            cut = args.index("--") if "--" in args else len(args)
            flags = [a for a in args[:cut] if _EVERYWHERE.fullmatch(a)]
            args = flags + [a for a in args[:cut] if not _EVERYWHERE.fullmatch(a)] + args[cut:]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            ctx.exit(1)
        except sqlite3.DatabaseError as exc:
            home = (ctx.obj.home if isinstance(ctx.obj, App) else None) or default_home()
            click.secho(f"Error: {home}/digest.db is not a usable digest database: {exc}", fg="red", err=True)
            ctx.exit(1)
        except OverflowError as exc:
            click.secho(f"Error: a number too large to look up: {exc}", fg="red", err=True)
            ctx.exit(1)
        except OSError as exc:  # a data directory that is missing, read-only or a file; a port in use
            where = f": {exc.filename}" if exc.filename else ""
            click.secho(f"Error: {exc.strerror or exc}{where}", fg="red", err=True)
            ctx.exit(1)


@click.group(cls=DigestGroup)
@click.version_option(__version__, prog_name="digest")
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    envvar="DIGEST_HOME",
    help="Data directory (default: $DIGEST_HOME, else the platform's user data dir).",
)
@click.option("-v", "--verbose", count=True, help="Log more (-vv for debug); also after a subcommand.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors; also after a subcommand.")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, verbose: int, quiet: bool) -> None:
    """Scan new podcasts and send the top five insights daily."""
    level = logging.ERROR if quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = App(home, quiet)


def _print_digest_summary(app: App, report) -> None:
    digest = report.digest
    click.echo(
        f"Digest {digest.date}: {len(digest.insights)} insights from {digest.episodes_scanned} episodes "
        f"on {digest.shows_scanned} shows."
    )
    for i in digest.insights:
        click.echo(f"  {i.rank}. {i.text}  [{i.shows} show{'' if i.shows == 1 else 's'}]")
    if digest.method_note:
        click.echo(
            f"Picked by {'the language model ' if digest.method == 'llm' else 'the ranker: '}{digest.method_note}."
        )
    delivery = report.delivery
    if delivery is None:
        click.echo("Nothing sent" + (" (dry run)." if report.dry_run else " (no insights today)."))
        return
    where = (
        f"via {app.config['smtp.host']}"
        if app.config.smtp_enabled
        else f"to {app.config.home / 'outbox' / digest.date}"
    )
    click.echo(f"Mail {where}: {delivery.summary()}.")
    _print_delivery_problems(delivery)


def _print_delivery_problems(delivery) -> None:
    if delivery.stopped:
        click.echo(f"  sending stopped, the rest wait for the next run: {delivery.stopped}", err=True)
    for email, error in delivery.deferred:
        click.echo(f"  deferred (retried next run): {email}: {error}", err=True)
    for email, error in delivery.failed:
        click.echo(f"  failed (`digest send --retry-failed` tries again): {email}: {error}", err=True)
    for email in delivery.uncertain:
        click.echo(f"  uncertain, not resent: {email} (see `digest deliveries`)", err=True)


@cli.command()
@click.option("--demo", is_flag=True, help="Follow the bundled demo shows and subscribe demo@localhost (offline).")
@click.option("--date", "date_", type=DATE, help="Digest date (default: today in schedule.timezone).")
@click.option("--dry-run", is_flag=True, help="Build and store the digest, but send nothing.")
@click.option(
    "--executor", type=click.Choice(choices("executor.name")), help="Where transcription runs (default: executor.name)."
)
@click.option("--address", help="Ray cluster address for --executor ray (default: executor.address).")
@click.option("--explain", is_flag=True, help="Show each insight's scores and why the runners-up lost.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@pass_app
def run(
    app: App,
    demo: bool,
    date_: str | None,
    dry_run: bool,
    executor: str | None,
    address: str | None,
    explain: bool,
    as_json: bool,
) -> None:
    """Poll feeds, transcribe new episodes, pick the top insights and send the digest."""
    from digest import pipeline

    if demo:
        from digest import demo as bundled

        bundled.install(app.config, app.store)
    quiet = app.quiet or as_json
    report = pipeline.run(
        app.config,
        app.store,
        date=date_,
        quiet=quiet,
        dry_run=dry_run,
        executor=executor,
        address=address,
        progress=pipeline.log.info if quiet else click.echo,
    )
    if as_json:
        emit_json(
            {
                "feeds_polled": report.feeds_polled,
                "feed_errors": [{"url": u, "error": e} for u, e in report.feed_errors],
                "new_episodes": report.new_episodes,
                "transcribed": [e.id for e in report.transcribed],
                "failed": [{"episode": e.id, "error": err} for e, err in report.failed],
                "backfilled": report.backfilled,
                "digest": report.digest.to_json(explain, app.config.url("")) if report.digest else None,
                "why_empty": report.why_empty or None,
                "delivery": report.delivery,
            }
        )
    elif quiet:
        _print_failures(report)
        if report.delivery is not None:
            _print_delivery_problems(report.delivery)
    else:
        _print_run(app, report, explain)
    if report.delivery is not None and report.delivery.all_failed:
        raise SystemExit(1)


def _print_run(app: App, report, explain: bool) -> None:
    failed = f" ({len(report.feed_errors)} failed)" if report.feed_errors else ""
    backfill = f", {report.backfilled} of them from the last days of newly added feeds" if report.backfilled else ""
    click.echo(f"Polled {report.feeds_polled} feeds{failed}: {report.new_episodes} new episodes{backfill}.")
    click.echo(f"Transcribed {len(report.transcribed)} episodes.")
    _print_failures(report)
    _print_digest_summary(app, report)
    if report.why_empty:
        click.echo(f"Why none: {report.why_empty}")
    if explain:
        _print_explain(report.digest)
    _print_next(app, report.digest)


def _print_failures(report) -> None:
    """Each feed and episode that failed, once, on stderr; all are tried again next run."""
    for url, error in report.feed_errors:
        click.echo(f"  feed failed: {error if url in error else f'{url}: {error}'}", err=True)
    for ep, error in report.failed:
        click.echo(f"  episode {ep.id} failed ({ep.title}): {error}", err=True)


def _print_next(app: App, digest) -> None:
    """Commands that work as printed, in this shell, on this data directory."""
    me = Path(sys.argv[0])
    found = shutil.which("digest")
    if found and me.name == "digest" and Path(found).resolve() == me.resolve():
        prog = "digest"
    elif me.name == "digest":
        prog = str(me)
    else:
        prog = f"{sys.executable} -m digest"
    if app.home is not None:
        prog += f" --home {shlex.quote(str(app.config.home))}"
    words = sorted(re.findall(r"[A-Za-z]{5,}", digest.insights[0].text if digest.insights else ""), key=len)
    query = words[-1].lower() if words else "open source"
    click.echo("Next:")
    click.echo(f"  {prog} show                  # this digest as the mail reads")
    click.echo(
        f"  {prog} serve                 # the archive on http://{app.config['web.host']}:{app.config['web.port']}/"
    )
    click.echo(f'  {prog} search "{query}"')


def _print_explain(digest) -> None:
    def why(parts: dict[str, float]) -> str:
        return ", ".join(f"{name} {value:+.2f}" for name, value in parts.items())

    for i in digest.insights:
        click.echo(
            f"  #{i.rank} score {i.score:+.2f} (p {i.salience:.2f}), said on {i.shows} show(s), novelty {i.novelty:.2f}"
        )
        if i.why:
            click.echo(f"      decided by: {why(i.why)}")
        if i.reason:
            click.echo(f"      the model's reason: {i.reason}")
    if digest.runners_up:
        click.echo("Runners-up:")
    for r in digest.runners_up:
        click.echo(f"  - {r.reason}: {r.statement} (score {r.score:+.2f})")
        if r.why:
            click.echo(f"      decided by: {why(r.why)}")


@cli.command()
@click.option("--date", "date_", type=DATE, help="Which digest (default: the latest).")
@click.option("--json", "fmt", flag_value="json", help="The digest JSON (see README).")
@click.option("--html", "fmt", flag_value="html", help="The email's HTML part.")
@click.option("--text", "fmt", flag_value="text", default=True, help="The email's text part (default).")
@click.option("--explain", is_flag=True, help="Include scores and runners-up in the JSON or text.")
@click.option("--for", "reader", metavar="EMAIL", help="That subscriber's own digest (their picks).")
@pass_app
def show(app: App, date_: str | None, fmt: str, explain: bool, reader: str | None) -> None:
    """Print a stored digest."""
    from digest.deliver import render_for
    from digest.readers import ReaderDay

    store = app.existing_store()
    digest = store.digest(date_)
    email, positions, pages = "reader@example.invalid", None, None
    if reader:
        sub = store.subscriber(reader)
        day = ReaderDay.load(app.config, store, digest)
        digest, positions = day.digest_for(day.current(store, sub.id)[0])
        email, pages = sub.email, day.pages
    if fmt == "json":
        emit_json(digest.to_json(explain, app.config.url("")))
        return
    _, html, text = render_for(app.config, digest, email, positions, pages)
    click.echo(html if fmt == "html" else text, nl=False)
    if explain and fmt == "text":
        _print_explain(digest)


@cli.command()
@click.option("--date", "date_", type=DATE, help="Which digest (default: the latest).")
@click.option("--to", "to", multiple=True, help="Only these subscribers (repeatable).")
@click.option("--resend", is_flag=True, help="Send even to those the ledger says already have it.")
@click.option("--retry-failed", is_flag=True, help="Send again to those whose send failed for good (5xx).")
@pass_app
def send(app: App, date_: str | None, to: tuple[str, ...], resend: bool, retry_failed: bool) -> None:
    """Send (or resend) a stored digest; the send ledger still stops duplicates unless --resend."""
    from digest.deliver import deliver

    digest = app.store.digest(date_)
    only = [app.store.subscriber(email) for email in to] if to else None
    report = deliver(app.config, app.store, digest, only=only, resend=resend, retry_failed=retry_failed)
    click.echo(f"Digest {digest.date}: {report.summary()}.")
    _print_delivery_problems(report)
    if report.failed or report.deferred or report.stopped:
        raise SystemExit(1)


@cli.command()
@click.option("--date", "date_", type=DATE, help="Only this digest's sends.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def deliveries(app: App, date_: str | None, as_json: bool) -> None:
    """Show the send ledger: who got which digest, and what failed."""
    print_listing(
        app.store.deliveries(date_),
        as_json,
        f"No deliveries{' of ' + date_ if date_ else ''} yet.",
        f"{'DATE':<10}  {'STATUS':<9} EMAIL",
        lambda d: f"{d.date}  {d.status:<9} {d.email}" + (f"  ({d.error})" if d.error else ""),
    )


@cli.command()
@click.argument("token")
@pass_app
def unsubscribe(app: App, token: str) -> None:
    """Unsubscribe the address a signed unsubscribe link was made for."""
    from digest.signing import verify

    email = verify(app.config, "unsubscribe", token.rstrip("/").rsplit("/", 1)[-1])
    app.store.set_subscriber_status(email, SubscriberStatus.UNSUBSCRIBED)
    click.echo(f"Unsubscribed {email}")


@cli.command()
@pass_app
def schedule(app: App) -> None:
    """Run `digest run` on schedule.cron (default 06:00 daily) until SIGTERM."""
    from digest import pipeline
    from digest.schedule import serve_forever

    def job() -> None:
        try:
            report = pipeline.run(app.config, app.store, quiet=True)
            assert report.digest is not None
            click.echo(
                f"{report.digest.date}: {len(report.digest.insights)} insights, "
                f"{len(report.delivery.sent) if report.delivery else 0} mails sent"
                + (f"; {report.why_empty}" if report.why_empty else ""),
                err=True,
            )
        except pipeline.RunLocked as exc:
            click.echo(f"skipped: {exc}", err=True)
        except DigestError as exc:
            click.echo(f"run failed: {exc}", err=True)

    serve_forever(app.config, job)


@cli.command()
@click.argument("query")
@click.option("--kind", type=click.Choice([k.value for k in HitKind]), help="Only this kind of hit.")
@click.option("--show", help="Only this show (title or feed id).")
@click.option("--since", type=DATE, help="Only from this date on.")
@click.option("--until", type=DATE, help="Only up to this date.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def search(
    app: App,
    query: str,
    kind: str | None,
    show: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Search everything said and sent: keyword and semantic hits, fused."""
    from digest.archive import Archive, Filters

    filters = Filters(kind, show, since, until, limit)
    from digest.embed import query_embedder

    hits = Archive(app.config, app.existing_store(), query_embedder(app.config)).search(query, filters)
    if as_json:
        emit_json(hits)
        return
    if not hits:
        click.echo("No matches.", err=True)
    for h in hits:
        where = f"{h.show} — {h.episode}" if h.episode else h.show
        at = f" @ {clock(h.start)}" if h.start is not None else ""
        click.echo(f"[{h.kind}] {h.date or ''}  {where}{at}\n    {h.text}\n    {h.url or ''}")


@cli.command()
@click.option("--host", help="Address to listen on (default: web.host).")
@click.option("--port", type=int, help="Port (default: web.port).")
@pass_app
def serve(app: App, host: str | None, port: int | None) -> None:
    """Serve the web archive: digests, insights, transcripts, search, feeds, subscribe."""
    from digest.web import base_url_mismatch, make_server

    server = make_server(app.config, host or app.config["web.host"], port or app.config["web.port"])
    click.echo(f"Serving the archive on http://{server.effective_host}:{server.effective_port}/ (Ctrl-C stops)")
    if warning := base_url_mismatch(app.config, server.effective_host, int(server.effective_port)):
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    if not app.config.db_path.exists():
        click.secho(f"Warning: {app.no_data()}", fg="yellow", err=True)
    if (archive := getattr(server, "application", None)) is not None:
        threading.Thread(target=_warm, args=(archive,), daemon=True).start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _warm(archive) -> None:
    """Load the search model while the server starts, so the first search does not wait seconds for it."""
    try:
        archive.embedder()
    except DigestError as exc:
        click.secho(f"Warning: search will not work: {exc}", fg="yellow", err=True)


@cli.command("config")
@click.option("--json", "as_json", is_flag=True)
@click.option("--markdown", is_flag=True, help="Print the settings table of the README.")
@pass_app
def config_cmd(app: App, as_json: bool, markdown: bool) -> None:
    """Show every setting, its value and where the value came from."""
    if markdown:
        from digest.config import markdown_table

        click.echo(markdown_table(), nl=False)
        return
    cfg = app.config
    rows = [
        {"name": s.name, "value": cfg[s.name], "source": cfg.source(s.name), "env": s.env, "help": s.help}
        for s in SETTINGS
    ]
    if as_json:
        emit_json({"home": str(cfg.home), "settings": rows})
        return
    click.echo(f"# DIGEST_HOME = {cfg.home}")
    for r in rows:
        click.echo(f"{r['name']} = {r['value']!r}  ({r['source']}; {r['env']})  # {r['help']}")


from digest import cli_catalog  # noqa: E402, F401  (registers the catalogue commands on cli)
