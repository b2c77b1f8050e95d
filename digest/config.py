"""Settings: one declarative table, read from ``config.toml`` and ``DIGEST_*`` variables.

Every setting is ``<table>.<key>``. ``$DIGEST_HOME/config.toml`` sets it as
``[table] key = value``; the environment variable ``DIGEST_<TABLE>_<KEY>`` overrides
the file. Defaults, validation, ``digest config`` and the README table all come from
:data:`SETTINGS`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from digest.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Setting:
    """One setting: its dotted name, default and one-line help. The default's type is the setting's type."""

    name: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()  # the only values allowed, when given
    minimum: float | None = None  # the smallest value allowed, for numbers

    @property
    def env(self) -> str:
        return "DIGEST_" + self.name.replace(".", "_").upper()


SETTINGS: list[Setting] = [
    Setting("feeds.initial_episodes", 3, "Episodes taken from a feed's first poll (newest first).", minimum=0),
    Setting(
        "feeds.backfill_days",
        7,
        "Days back from the digest date whose episodes a feed's first poll puts into that digest (at most "
        "feeds.initial_episodes), however short rank.lookback_days is.",
        minimum=0,
    ),
    Setting("feeds.timeout", 20.0, "Seconds before a feed request gives up.", minimum=0.1),
    Setting("feeds.concurrency", 8, "Feeds polled at once.", minimum=1),
    Setting("feeds.max_mb", 50.0, "Largest feed document read, in MB after decompression.", minimum=0.01),
    Setting("feeds.deadline", 60.0, "Seconds a whole feed download may take, however slowly bytes arrive.", minimum=1),
    Setting("fetch.max_audio_mb", 500, "Largest enclosure downloaded, in MB.", minimum=1),
    Setting("fetch.timeout", 60.0, "Seconds of network silence before a download gives up.", minimum=0.1),
    Setting(
        "fetch.deadline",
        180.0,
        "Seconds one episode's audio, and apart from it all its transcripts, may take to download, retries "
        "included, however slowly bytes arrive.",
        minimum=1,
    ),
    Setting(
        "fetch.feed_budget",
        600.0,
        "Seconds of downloads one feed's episodes may take in a run; the rest of them wait for the next run.",
        minimum=1,
    ),
    Setting("fetch.max_transcript_mb", 20.0, "Largest publisher transcript read, in MB, decompressed.", minimum=0.01),
    Setting(
        "fetch.private_addresses",
        "auto",
        "Feed URLs on loopback or private addresses: auto (only for a feed the operator added as a file or by "
        "such an address, never by a host name), allow, block.",
        choices=("auto", "allow", "block"),
    ),
    Setting("fetch.retries", 3, "Retries of a download that failed with 404, 5xx or a timeout.", minimum=0),
    Setting("fetch.backoff", 2.0, "Seconds before the first retry; doubles each time.", minimum=0),
    Setting("pipeline.max_attempts", 3, "Runs that may fail on an episode before it is given up.", minimum=1),
    Setting("asr.backend", "faster-whisper", "Transcriber: faster-whisper or openai-whisper."),
    Setting("asr.model", "", "Model name or path; empty means the bundled tiny.en."),
    Setting("asr.device", "auto", "auto, cpu or cuda.", choices=("auto", "cpu", "cuda")),
    Setting("asr.compute_type", "auto", "auto (cuda: float16, cpu: int8) or any CTranslate2 type."),
    Setting("asr.chunk_seconds", 600, "Audio decoded and transcribed at a time; bounds memory.", minimum=30),
    Setting("asr.language", "en", "Spoken language passed to Whisper."),
    Setting(
        "asr.batch_size",
        0,
        "Speech clips (faster-whisper) or 30 s windows (openai-whisper) per forward pass; 0 is the backend's "
        "default: 4 for faster-whisper (the same words as 1, faster; 8 is no faster on CPU and holds 350 MB more), "
        "1 for openai-whisper (more is its greedy batched decoder, for GPUs; see README, Performance).",
        minimum=0,
    ),
    Setting(
        "asr.beam_size",
        5,
        "Beam search width, as faster-whisper's default; 1 is greedy: faster, less accurate "
        "(the batched openai-whisper decoder is always greedy).",
        minimum=1,
    ),
    Setting(
        "executor.name", "local", "Where transcription runs: local (this process) or ray.", choices=("local", "ray")
    ),
    Setting("executor.address", "", "Ray cluster address for executor = ray; empty starts a local one."),
    Setting("executor.workers", 2, "Ray worker actors, one model each (at most one per GPU).", minimum=1),
    Setting("embed.model", "", "sentence-transformers model name or path; empty means bundled MiniLM."),
    Setting("rank.top_k", 5, "Insights in a digest, at most.", minimum=1),
    Setting("rank.min_shows", 1, "Distinct shows with an agreeing statement that an insight needs.", minimum=1),
    Setting(
        "rank.cluster_threshold", 0.5, "Cosine similarity at which a statement repeats an earlier pick of the day."
    ),
    Setting("rank.agreement", 0.73, "Cosine similarity at which another show's statement agrees with a pick."),
    Setting("rank.novelty_threshold", 0.6, "Cosine similarity to anything already sent at which a statement is stale."),
    Setting(
        "rank.diversity",
        0.5,
        "MMR trade-off between the ranker's log-odds and similarity to the picks so far: 1 is pure score, 0 is"
        " pure diversity.",
    ),
    Setting("rank.min_score", 0.05, "Quality bar: the ranker's probability below which nothing is picked."),
    Setting("rank.min_words", 12, "Words a statement needs to be picked: shorter ones rarely stand alone.", minimum=1),
    Setting(
        "rank.max_quotes",
        4,
        "Quotes per insight, at most: its statement, one per agreeing show, then the best statements of its passage.",
        minimum=1,
    ),
    Setting("rank.support_boost", 0.5, "Log-odds added to a statement's score per other show that agrees with it."),
    Setting(
        "rank.lookback_days",
        1,
        "Days before the digest date whose episodes it ranks (by pubDate, else first seen); older ones are archived.",
        minimum=0,
    ),
    Setting(
        "llm.mode",
        "off",
        "off; rewrite (an OpenAI-compatible model rephrases each ranked pick); select (the model reads every "
        "episode and picks the day's insights, every quote checked against the transcript; see README).",
        choices=("off", "rewrite", "select"),
    ),
    Setting("llm.base_url", "", "Base URL of the OpenAI-compatible API, e.g. http://localhost:11434/v1 (Ollama)."),
    Setting("llm.model", "", "Model name sent to the LLM API."),
    Setting("llm.api_key_env", "DIGEST_LLM_API_KEY", "Environment variable that holds the LLM API key."),
    Setting(
        "llm.context_tokens",
        8192,
        "The model's context window in tokens; transcripts are cut into parts that fit it.",
        minimum=2048,
    ),
    Setting("llm.timeout", 120.0, "Seconds one LLM call may take before the run falls back.", minimum=1),
    Setting("llm.max_calls", 300, "LLM calls one run may make; past it the run falls back.", minimum=1),
    Setting(
        "llm.max_tokens",
        2_000_000,
        "Tokens (prompt and answer) one run may use; past it the run falls back.",
        minimum=1000,
    ),
    Setting(
        "llm.max_seconds", 1800.0, "Seconds all LLM calls of one run may take; past it the run falls back.", minimum=1
    ),
    Setting("mail.from", "digest@localhost", "From address of the daily email."),
    Setting("mail.subject", "Top 5 podcast insights — {date}", "Subject; {date} is the digest date."),
    Setting(
        "mail.weekly_subject",
        "The week's top podcast insights — week to {date}",
        "Subject of a weekly reader's mail; {date} is the send day.",
    ),
    Setting("mail.quiet_day_note", False, "Send a short note on days with nothing new."),
    Setting("smtp.host", "", "SMTP server; empty writes mail to $DIGEST_HOME/outbox/."),
    Setting("smtp.port", 587, "SMTP port.", minimum=1),
    Setting("smtp.security", "starttls", "starttls, ssl or none.", choices=("starttls", "ssl", "none")),
    Setting("smtp.username", "", "SMTP user; empty means no AUTH."),
    Setting("smtp.password_env", "DIGEST_SMTP_PASSWORD", "Environment variable that holds the SMTP password."),
    Setting("smtp.timeout", 30.0, "Seconds before an SMTP command gives up.", minimum=0.1),
    Setting("web.base_url", "http://127.0.0.1:8080", "Public URL of `digest serve`, used in links."),
    Setting("web.host", "127.0.0.1", "Address `digest serve` listens on."),
    Setting("web.port", 8080, "Port `digest serve` listens on.", minimum=0),
    Setting("web.threads", 8, "Requests `digest serve` answers at once.", minimum=1),
    Setting(
        "web.timeout",
        10,
        "Seconds before `digest serve` closes a connection that is idle, or whose request is still arriving.",
        minimum=1,
    ),
    Setting("web.max_connections", 2000, "Connections `digest serve` holds open at once.", minimum=1),
    Setting(
        "web.trusted_proxies",
        "",
        "Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For names the client.",
    ),
    Setting("web.subscribe_rate", 10, "Subscribe requests an hour from one client address, and for one email address."),
    Setting("web.confirm_interval", 60, "Minutes before another confirmation mail goes to the same address."),
    Setting("web.confirm_ttl", 72, "Hours a confirmation link stays valid."),
    Setting("web.link_ttl", 60, "Days a mail's preferences and feedback links stay valid.", minimum=1),
    Setting(
        "readers.candidates",
        30,
        "Candidates kept with each digest for per-reader digests: the common picks, then runners-up that passed "
        "the quality bar.",
        minimum=1,
    ),
    Setting(
        "readers.interest_weight",
        1.0,
        "Score a candidate gains, against the day's order (1 from first to last), for each standard deviation "
        "of the day's cosines by which it is nearer a reader's interests and clicks than the day's average "
        "(0: they change nothing).",
        minimum=0,
    ),
    Setting(
        "readers.feedback_half_life",
        14.0,
        "Days after which a 'more/less like this' click counts half as much.",
        minimum=0.1,
    ),
    Setting(
        "readers.weekly_day",
        "sunday",
        "Weekday whose digest run sends weekly readers the week's best: from the candidates of that day's digest "
        "and the six days before it.",
        choices=("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    ),
    Setting("schedule.cron", "0 6 * * *", "Crontab expression for `digest schedule`."),
    Setting("schedule.timezone", "UTC", "Time zone of the schedule and of digest dates."),
]
_BY_NAME = {s.name: s for s in SETTINGS}


def default(name: str) -> Any:
    """A setting's default, for the settings dataclasses of the stages that read it."""
    return _BY_NAME[name].default


RENAMED = {"llm.enabled": 'set llm.mode = "rewrite" (or "select"; see README)'}  # old name → what to write now


def default_home() -> Path:
    """The data directory: ``$DIGEST_HOME``, else the platform's user data dir."""
    if home := os.environ.get("DIGEST_HOME"):
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("digest"))


def _coerce(setting: Setting, value: Any, source: str) -> Any:
    """``value`` as the setting's type, within its choices and minimum; :class:`ConfigError` says what is wrong."""
    value = _typed(setting, value, source)
    if setting.choices and value not in setting.choices:
        raise ConfigError(f"{source}: {setting.name} expects one of {', '.join(setting.choices)}, found {value!r}")
    if setting.minimum is not None and value < setting.minimum:
        raise ConfigError(f"{source}: {setting.name} expects at least {setting.minimum:g}, found {value!r}")
    return value


def choices(name: str) -> tuple[str, ...]:
    """The values a setting allows."""
    return _BY_NAME[name].choices


def _typed(setting: Setting, value: Any, source: str) -> Any:
    kind = type(setting.default)
    if isinstance(value, str) and kind is not str:
        text = value.strip().lower()
        try:
            if kind is bool:
                if text not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise ValueError(text)
                return text in {"1", "true", "yes", "on"}
            return kind(text)
        except ValueError:
            raise ConfigError(f"{source}: {setting.name} expects {kind.__name__}, found {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: {setting.name} expects {kind.__name__}, found {value!r}")
    return value


@dataclass
class Config:
    """Resolved settings plus the data directory they belong to."""

    home: Path
    values: dict[str, Any]
    from_file: frozenset[str] = frozenset()

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def section(self, prefix: str, cls: type[T]) -> T:
        """A settings dataclass whose field ``f`` holds the setting ``prefix.f``."""
        return cls(**{f.name: self.values[f"{prefix}.{f.name}"] for f in fields(cls)})  # type: ignore[arg-type]

    def source(self, name: str) -> str:
        """Where a setting's value came from: env, config.toml or default."""
        if _BY_NAME[name].env in os.environ:
            return "env"
        return "config.toml" if name in self.from_file else "default"

    @property
    def db_path(self) -> Path:
        return self.home / "digest.db"

    @property
    def smtp_enabled(self) -> bool:
        return bool(self.values["smtp.host"])

    def url(self, path: str) -> str:
        """An absolute link into the web archive: ``web.base_url`` joined with ``path``."""
        return self.values["web.base_url"].rstrip("/") + "/" + path.lstrip("/")

    def path(self, *parts: str) -> Path:
        """A path inside the data directory, its parent created."""
        p = self.home.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def load(home: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read settings for a data directory.

    Args:
        home: The data directory; defaults to :func:`default_home`.
        overrides: Values that win over everything else (used by tests and the demo).

    Returns:
        The resolved :class:`Config`. Raises :class:`ConfigError` on an unknown key or
        a value of the wrong type.
    """
    home = home or default_home()
    values = {s.name: s.default for s in SETTINGS}
    file_values: set[str] = set()
    config_file = home / "config.toml"
    if config_file.exists():
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config_file}: expected UTF-8 TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{config_file}: cannot read it: {exc.strerror or exc}") from None
        for table, keys in data.items():
            if not isinstance(keys, dict):
                raise ConfigError(f"{config_file}: expected a [table], found key {table!r}")
            for key, value in keys.items():
                name = f"{table}.{key}"
                if name in RENAMED:
                    raise ConfigError(f"{config_file}: {name} was replaced: {RENAMED[name]}")
                if name not in _BY_NAME:
                    raise ConfigError(f"{config_file}: unknown setting {name!r}; see `digest config`")
                values[name] = _coerce(_BY_NAME[name], value, str(config_file))
                file_values.add(name)
    for s in SETTINGS:
        if s.env in os.environ:
            values[s.name] = _coerce(s, os.environ[s.env], s.env)
    for name, value in (overrides or {}).items():
        if name not in _BY_NAME:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = _coerce(_BY_NAME[name], value, "override")
    _check_timezone(values["schedule.timezone"])
    _check_llm(values)
    return Config(home=home, values=values, from_file=frozenset(file_values))


def _check_llm(values: dict[str, Any]) -> None:
    """A model mode needs a model to ask: say so at start, not as a fallback halfway through a run."""
    missing = [name for name in ("llm.base_url", "llm.model") if not values[name]]
    if values["llm.mode"] != "off" and missing:
        raise ConfigError(
            f"llm.mode = {values['llm.mode']!r} needs {' and '.join(missing)}; set it, or llm.mode = 'off'"
        )


def _check_timezone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"schedule.timezone expects an IANA zone such as Europe/Berlin, found {name!r}") from None


def markdown_table() -> str:
    """The settings table of the README, generated from :data:`SETTINGS`."""
    rows = ["| Setting | Environment variable | Default | What it does |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = f'"{s.default}"' if isinstance(s.default, str) else repr(s.default).lower()
        rows.append(f"| `{s.name}` | `{s.env}` | `{default}` | {s.help} |")
    return "\n".join(rows) + "\n"
