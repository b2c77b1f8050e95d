"""digest: scan new podcasts and send the top five insights daily."""

__version__ = "0.1.0"

from digest.config import SETTINGS, Config, load  # noqa: E402
from digest.errors import DigestError  # noqa: E402
from digest.models import Episode, Feed, Segment, Status  # noqa: E402
from digest.store import Store  # noqa: E402

__all__ = [
    "SETTINGS",
    "Config",
    "DigestError",
    "Episode",
    "Feed",
    "Segment",
    "Status",
    "Store",
    "__version__",
    "load",
]
