"""The SQLite store: the only package that writes SQL. WAL mode, named migrations.

:class:`Store` joins the table groups; each lives in its own module over :class:`StoreBase`.
"""

from digest.store.base import StoreBase, text_hash
from digest.store.catalog import Catalog
from digest.store.insights import Insights
from digest.store.mail import Mail
from digest.store.readers import Readers
from digest.store.search import Search


class Store(Catalog, Insights, Mail, Readers, Search):
    """A digest database: feeds and episodes, insights, mail, per-reader data, search. Use from one thread."""


__all__ = ["Store", "StoreBase", "text_hash"]
