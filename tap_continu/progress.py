"""Progress reporting for the completion batches of a long sync."""

from __future__ import annotations

import typing as t

from tap_continu.batching import is_queryable_email

if t.TYPE_CHECKING:
    import logging

    from tap_continu.batching import EmailBatch, EmailBatcher
    from tap_continu.budget import RequestBudget


class BatchProgress:
    """Count users and batches, and log one INFO line per finished batch.

    The lines hold counts and times only, never an email. The total number of users is
    known only once the last page of users is read: until then a line gives how many were
    listed so far.
    """

    def __init__(self, logger: logging.Logger) -> None:
        """Create a reporter that logs through `logger`."""
        self.logger = logger
        self.start()

    def start(self) -> None:
        """Reset the counts for a new sync."""
        self.users_listed = 0
        self.users_without_email = 0
        self.users_done = 0
        self.listing_complete = False

    def count_user(self, email: object) -> None:
        """Count a listed user, and whether their email can be queried."""
        self.users_listed += 1
        if not is_queryable_email(email):
            self.users_without_email += 1

    def batch_started(self, batch: EmailBatch) -> None:
        """Note that `batch` is about to be synced."""
        self.logger.debug(
            "Syncing completions for batch %d of %d users", batch.number, len(batch.emails)
        )

    def batch_finished(
        self,
        batch: EmailBatch,
        budget: RequestBudget,
    ) -> None:
        """Log the progress after every completion stream has synced `batch`."""
        self.users_done += len(batch.emails)
        listed = (
            f"of {self.users_listed}"
            if self.listing_complete
            else f"of {self.users_listed} listed so far"
        )
        if self.users_without_email:
            listed += f" ({self.users_without_email} without a usable email)"
        self.logger.info(
            "Completions: batch %d done, %d users %s; %d requests sent; next request "
            "in %.1f s at %.1f s per request",
            batch.number,
            self.users_done,
            listed,
            budget.requests_sent,
            budget.seconds_until_next_request(),
            budget.seconds_per_request(),
        )

    def finish(self, batcher: EmailBatcher) -> None:
        """Log what the sync could not query, once the last user has been processed."""
        if self.users_without_email:
            self.logger.warning(
                "users: %d user(s) have no usable email address, so no completions "
                "were requested for them",
                self.users_without_email,
            )
        if batcher.emails_too_long:
            self.logger.warning(
                "users: %d email(s) are too long to fit in a URL of max_url_length=%d "
                "bytes, so no completions were requested for them; raise max_url_length",
                batcher.emails_too_long,
                batcher.max_url_length,
            )
