"""Packing of user emails into URL-sized batches for the completion endpoints.

The completion endpoints take a comma-separated `for_users` list. The fewer requests a
sync makes the sooner it ends under the rate limit, so each batch contains as many emails as
fit in `max_url_length` bytes of the whole encoded URL.
"""

from __future__ import annotations

import dataclasses
import typing as t
from urllib.parse import quote_plus

# Characters left unencoded in the query string. Both are legal in a query (RFC 3986,
# section 3.4), `,` separates the emails and `@` is in every one, so sending them raw
# saves 4 bytes per email. Everything else outside the unreserved set is
# percent-encoded: a raw `+` would reach the server as a space.
QUERY_SAFE_CHARS = "@,"

EMAIL_SEPARATOR = ","


def encode_query_value(value: str) -> str:
    """Percent-encode `value` exactly as the streams encode it in a query string."""
    return quote_plus(value, safe=QUERY_SAFE_CHARS)


def encoded_email_length(email: str) -> int:
    """Return how many bytes `email` takes in the encoded `for_users` value."""
    return len(encode_query_value(email))


def is_queryable_email(email: object) -> t.TypeGuard[str]:
    """Return whether `email` can be sent in a `for_users` list.

    An email must be a non-empty string without a comma, because the API splits the list
    on commas after decoding it.
    """
    return isinstance(email, str) and bool(email.strip()) and EMAIL_SEPARATOR not in email


@dataclasses.dataclass
class EmailBatch:
    """Emails for one request per completion stream, numbered from 1 in each run."""

    number: int
    emails: list[str] = dataclasses.field(default_factory=list)
    encoded_length: int = 0

    def context(self) -> dict[str, int]:
        """Return the child-stream context that names this batch. It contains no email."""
        return {"user_batch": self.number}


class EmailBatcher:
    """Collect emails into batches whose request URLs fit the URL budget.

    The users stream adds each user's email. When an email no longer fits, the open batch
    is closed and returned, and the email starts the next one. The completion streams then
    look the batch up by the number in their context. Only the open batch and the one
    being synced are kept, so memory does not grow with the number of users.
    """

    def __init__(self, max_url_length: int) -> None:
        """Create a batcher for request URLs of at most `max_url_length` bytes."""
        self.max_url_length = max_url_length
        self.capacity = max_url_length
        self._url_prefix_length = 0
        self._open = EmailBatch(number=1)
        self._ready: dict[int, EmailBatch] = {}
        self.emails_too_long = 0
        self._unknown: set[str] = set()
        self._longest_accepted_url = 0
        self._shortest_rejected_url: int | None = None

    def set_url_prefix_length(self, url_length_without_emails: int) -> None:
        """Start a new sync whose longest request URL has this length without emails.

        Args:
            url_length_without_emails: Length of the longest completion URL with an
                empty `for_users` value, all other parameters included.
        """
        self._url_prefix_length = url_length_without_emails
        self.capacity = self.max_url_length - url_length_without_emails
        self._open = EmailBatch(number=1)
        self._ready.clear()
        self.emails_too_long = 0
        self._unknown.clear()
        self._longest_accepted_url = 0
        self._shortest_rejected_url = None

    def mark_unknown(self, email: str) -> None:
        """Remember that the API does not know `email`, so no stream requests it again."""
        self._unknown.add(email)

    def is_unknown(self, email: str) -> bool:
        """Return whether a completion endpoint has returned 404 for `email` alone."""
        return email in self._unknown

    def split_to_fit(self, emails: list[str]) -> list[list[str]]:
        """Split `emails` into runs that fit the current capacity, keeping their order.

        A batch closed before a 414 taught the batcher a lower limit is split here, so that
        every completion stream after the first sends it at the learned size.
        """
        chunks: list[list[str]] = []
        current: list[str] = []
        used = 0
        for email in emails:
            length = encoded_email_length(email)
            separator = len(EMAIL_SEPARATOR) if current else 0
            if current and used + separator + length > self.capacity:
                chunks.append(current)
                current, used, separator = [], 0, 0
            current.append(email)
            used += separator + length
        if current:
            chunks.append(current)
        return chunks

    def record_url_accepted(self, length: int) -> None:
        """Note a completion URL of `length` bytes that the server accepted."""
        self._longest_accepted_url = max(self._longest_accepted_url, length)
        self._fit_capacity()

    def record_url_rejected(self, length: int) -> None:
        """Note a completion URL of `length` bytes that the server rejected with 414."""
        shortest = self._shortest_rejected_url
        self._shortest_rejected_url = length if shortest is None else min(shortest, length)
        self._fit_capacity()

    def _fit_capacity(self) -> None:
        # After a 414 the server's limit lies between the longest URL it accepted and the
        # shortest it rejected. Later batches aim halfway between the two, so a low limit
        # is found in a few batches instead of splitting every batch from max_url_length.
        rejected = self._shortest_rejected_url
        if rejected is None:
            return
        accepted = self._longest_accepted_url
        limit = max(accepted, (accepted + rejected) // 2) if accepted else rejected - 1
        limit = min(limit, rejected - 1, self.max_url_length)
        self.capacity = max(1, limit - self._url_prefix_length)

    def add(self, email: str) -> EmailBatch | None:
        """Add `email` and return the batch it closed, if it closed one.

        An email too long to fit even alone is counted in `emails_too_long` and skipped.
        """
        length = encoded_email_length(email)
        if length > self.capacity:
            self.emails_too_long += 1
            return None
        closed = None
        separator = len(EMAIL_SEPARATOR) if self._open.emails else 0
        if self._open.encoded_length + separator + length > self.capacity:
            closed = self._close_open_batch()
            separator = 0
        self._open.emails.append(email)
        self._open.encoded_length += separator + length
        return closed

    def flush(self) -> EmailBatch | None:
        """Close the open batch and return it, or return None when it is empty."""
        if not self._open.emails:
            return None
        return self._close_open_batch()

    def emails(self, context: t.Mapping[str, t.Any] | None) -> list[str]:
        """Return the emails of the batch named in a child-stream `context`.

        Raises:
            KeyError: If the context names no batch that is ready.
        """
        number = (context or {}).get("user_batch")
        if not isinstance(number, int) or number not in self._ready:
            msg = f"no email batch is ready for context {context!r}"
            raise KeyError(msg)
        return self._ready[number].emails

    def release(self, batch: EmailBatch) -> None:
        """Drop a batch that every child stream has synced."""
        self._ready.pop(batch.number, None)

    def _close_open_batch(self) -> EmailBatch:
        closed = self._open
        self._ready[closed.number] = closed
        self._open = EmailBatch(number=closed.number + 1)
        return closed


def join_emails(emails: list[str]) -> str:
    """Return the unencoded `for_users` value for `emails`."""
    return EMAIL_SEPARATOR.join(emails)
