"""Domain errors raised by library code; only ``cli.py`` turns them into exit codes."""


class DigestError(Exception):
    """Base class for every error digest raises on purpose."""


class ConfigError(DigestError):
    """A setting is unknown or has a value of the wrong type."""


class FeedError(DigestError):
    """A feed could not be fetched or holds nothing recoverable."""


class FetchError(DigestError):
    """An enclosure or transcript could not be downloaded or is not what it claims."""


class TranscriptParseError(DigestError):
    """A publisher transcript could not be parsed."""


class TranscriptionError(DigestError):
    """Audio could not be decoded or transcribed."""


class BackendError(DigestError):
    """An unknown backend name, or a backend whose optional extra is not installed."""


class NotFoundError(DigestError):
    """A feed, episode, subscriber or digest that does not exist."""


class DemoError(DigestError):
    """The demo was asked to run in a data directory that holds a user's own feeds or subscribers."""


class DeliveryError(DigestError):
    """A message could not be rendered or sent."""


def unknown_name(kind: str, name: str, valid: list[str]) -> BackendError:
    """Build the error for a registry lookup that failed, listing the valid names."""
    return BackendError(f"unknown {kind} {name!r}; expected one of: {', '.join(sorted(valid))}")
