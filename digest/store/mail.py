"""Subscribers and the send ledger."""

from __future__ import annotations

from digest.errors import NotFoundError
from digest.models import Delivery, DeliveryStatus, Subscriber, SubscriberStatus
from digest.store.base import StoreBase


class Mail(StoreBase):
    """Subscribers and the per-(date, subscriber) send ledger."""

    # subscribers

    def add_subscriber(self, email: str, status: SubscriberStatus = SubscriberStatus.ACTIVE) -> tuple[Subscriber, bool]:
        """Add a subscriber, or reactivate one; returns it and whether anything changed."""
        with self.transaction() as db:
            row = db.execute("SELECT status FROM subscribers WHERE email = ?", (email,)).fetchone()
            if row is None:
                db.execute("INSERT INTO subscribers (email, status) VALUES (?, ?)", (email, status))
            elif row[0] != status and not (row[0] == SubscriberStatus.ACTIVE and status == SubscriberStatus.PENDING):
                db.execute(
                    "UPDATE subscribers SET status = ?, changed = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
                    "WHERE email = ?",
                    (status, email),
                )
            else:
                return self.subscriber(email), False
        return self.subscriber(email), True

    def subscriber(self, ref: str | int) -> Subscriber:
        row = self.db.execute(
            "SELECT id, email, status, created, changed FROM subscribers WHERE email = ? OR id = ?",
            (str(ref), ref if str(ref).isdigit() else -1),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no subscriber {ref!r}; `digest subscribers list` shows them")
        return Subscriber(*row)

    def subscribers(self, status: SubscriberStatus | None = SubscriberStatus.ACTIVE) -> list[Subscriber]:
        rows = self.db.execute(
            "SELECT id, email, status, created, changed FROM subscribers WHERE ? IS NULL OR status = ? ORDER BY id",
            (status, status),
        )
        return [Subscriber(*r) for r in rows]

    def set_subscriber_status(self, email: str, status: SubscriberStatus) -> Subscriber:
        """Change a subscriber's status; unsubscribing also deletes their preferences, clicks and picks."""
        sub = self.subscriber(email)
        with self.transaction() as db:
            db.execute(
                "UPDATE subscribers SET status = ?, changed = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
                (status, sub.id),
            )
            if status is SubscriberStatus.UNSUBSCRIBED:
                for table in ("preferences", "clicks", "picks"):
                    db.execute(f"DELETE FROM {table} WHERE subscriber_id = ?", (sub.id,))
        return self.subscriber(sub.id)

    def claim_confirmation(self, email: str, interval: float) -> bool:
        """Whether a confirmation mail may go to ``email`` now: none went in the last ``interval``
        seconds. Records this one, so concurrent requests cannot both send."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE subscribers SET confirm_sent = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE email = ? "
                "AND (confirm_sent IS NULL OR strftime('%s', 'now') - strftime('%s', confirm_sent) >= ?)",
                (email, interval),
            )
        return cur.rowcount == 1

    def release_confirmation(self, email: str) -> None:
        """Forget a confirmation mail that could not be sent, so the next request may send one."""
        with self.transaction() as db:
            db.execute("UPDATE subscribers SET confirm_sent = NULL WHERE email = ?", (email,))

    def remove_subscriber(self, ref: str | int) -> Subscriber:
        sub = self.subscriber(ref)
        with self.transaction() as db:
            db.execute("DELETE FROM subscribers WHERE id = ?", (sub.id,))
        return sub

    # the send ledger

    _DELIVERY = (
        "SELECT d.date, d.subscriber_id, s.email, d.status, d.attempts, d.message_id, d.error "
        "FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
    )

    def deliveries(self, date: str | None = None) -> list[Delivery]:
        rows = self.db.execute(
            self._DELIVERY + "WHERE ? IS NULL OR d.date = ? ORDER BY d.date DESC, s.email", (date, date)
        )
        return [Delivery(*r) for r in rows]

    def delivery(self, date: str, subscriber_id: int) -> Delivery | None:
        row = self.db.execute(self._DELIVERY + "WHERE d.date = ? AND d.subscriber_id = ?", (date, subscriber_id))
        found = row.fetchone()
        return None if found is None else Delivery(*found)

    def record_delivery(
        self,
        date: str,
        subscriber_id: int,
        status: DeliveryStatus,
        *,
        message_id: str | None = None,
        error: str | None = None,
        attempt: bool = False,
    ) -> None:
        """Move a ledger row to ``status``; ``attempt`` counts a new try. Committed at once."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO deliveries (date, subscriber_id, status, attempts, message_id, error) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (date, subscriber_id) DO UPDATE SET "
                "status = excluded.status, attempts = attempts + ?, message_id = COALESCE(excluded.message_id, "
                "message_id), error = excluded.error, updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
                (date, subscriber_id, status, int(attempt), message_id, error, int(attempt)),
            )
