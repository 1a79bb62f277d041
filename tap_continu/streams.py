"""Stream definitions for tap-continu: users, and four completion streams keyed by email."""

from __future__ import annotations

import typing as t

import requests
from singer_sdk.streams.rest import PageContext
from typing_extensions import override

from tap_continu.batching import (
    QUERY_SAFE_CHARS,
    EmailBatch,
    EmailBatcher,
    is_queryable_email,
    join_emails,
)
from tap_continu.client import ContinuStream, parsed_body
from tap_continu.errors import APIRequestError, NotFoundError, URLTooLongError
from tap_continu.pagination import IdFromPaginator
from tap_continu.settings import start_timestamp

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context
    from singer_sdk.streams.rest import HTTPRequest

    from tap_continu.client import Connection
    from tap_continu.progress import BatchProgress

# `/data/users` returns 50, 100 or 500 users per page (the reference's `list_size`).
USERS_PAGE_SIZE = 500

# The users stream sends its bookmark as `updated_at_from` this many seconds early, so a
# user updated in the same second as the bookmark is read again rather than lost, whether
# the API treats the bound as inclusive or not.
BOOKMARK_OVERLAP_SECONDS = 1


class UsersStream(ContinuStream):
    """Users from `GET /data/users`, read with `list_type=full` and paged by `id_from`.

    Incremental on `updated_at`. The API's sort order is not documented, so the bookmark
    is the largest `updated_at` seen, written when the stream finishes. When no completion
    stream is selected, the bookmark goes to the API as `updated_at_from`. When one is, every
    user is read and emitted, because a completion can change while the user's
    `updated_at` does not.

    Each user's email goes into an `EmailBatcher`; every full batch becomes one child
    context, `{"user_batch": n}`, for the completion streams.
    """

    name = "users"
    path = "/data/users"
    primary_keys = ("id",)
    replication_key = "updated_at"
    is_sorted = False

    def __init__(
        self,
        tap: t.Any,  # noqa: ANN401
        connection: Connection,
        batcher: EmailBatcher,
        progress: BatchProgress,
    ) -> None:
        """Create the users stream, feeding emails to `batcher`."""
        super().__init__(tap, connection)
        self.batcher = batcher
        self.progress = progress
        self._paginator: IdFromPaginator | None = None
        self._at_final_record = False
        self._records_seen = 0
        # Whether this sync batches emails, decided once per sync rather than per user.
        self._feeds_completions = False

    @property
    def completions_selected(self) -> bool:
        """Return whether any completion stream will be synced."""
        return any(child.selected or child.has_selected_descendents for child in self.child_streams)

    @override
    def get_new_paginator(self) -> IdFromPaginator:
        self._paginator = IdFromPaginator(USERS_PAGE_SIZE, parsed_body, self.logger)
        return self._paginator

    @override
    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        params: dict[str, t.Any] = {"list_size": USERS_PAGE_SIZE, "list_type": "full"}
        if next_page_token:
            params["id_from"] = next_page_token
        if not self.completions_selected:
            since = self.get_starting_timestamp(context)
            if since is not None:
                params["updated_at_from"] = int(since.timestamp()) - BOOKMARK_OVERLAP_SECONDS
        return params

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        cursor = self._paginator.current_value if self._paginator else None
        for user in super().parse_response(response):
            # The API may start the next page with the `id_from` user itself.
            if cursor is None or user.get("id") != cursor:
                yield user

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Yield users one behind the API, so that the last user is known as the last.

        The SDK offers no hook after a parent's last record, so the batch still open then
        is flushed while the last user is processed.
        """
        self._at_final_record = False
        self._records_seen = 0
        self._feeds_completions = self.completions_selected
        self.batcher.set_url_prefix_length(self._url_length_without_emails())
        self.progress.start()
        pending: dict[str, t.Any] | None = None
        for user in super().get_records(context):
            if pending is not None:
                yield pending
            pending = user
        if pending is not None:
            self._at_final_record = True
            self.progress.listing_complete = True
            yield pending
        self.progress.finish(self.batcher)

    @override
    def generate_child_contexts(
        self,
        record: dict[str, t.Any],
        context: Context | None,
    ) -> t.Iterable[Context | None]:
        if not self._feeds_completions:
            return
        self._records_seen += 1
        passes_filter = self.stream_maps[0].get_filter_result(record)
        closed = None
        if passes_filter:
            email = record.get("email")
            self.progress.count_user(email)
            if is_queryable_email(email):
                closed = self.batcher.add(email)
        if closed is not None:
            yield from self._sync_batch(closed)
        if self._at_final_record or self._reached_dry_run_limit():
            final = self.batcher.flush()
            if final is None:
                return
            if passes_filter:
                yield from self._sync_batch(final)
            else:
                # The SDK skips the children of a record that a stream map filters out,
                # so a batch yielded here would be lost. Sync it directly instead.
                for batch_context in self._sync_batch(final):
                    self._sync_children_directly(batch_context)

    def _sync_batch(self, batch: EmailBatch) -> t.Iterator[Context]:
        self.progress.batch_started(batch)
        yield batch.context()
        self.batcher.release(batch)
        self.progress.batch_finished(batch, self.connection.budget)

    def _sync_children_directly(self, batch_context: Context) -> None:
        for child in self.child_streams:
            if child.selected or child.has_selected_descendents:
                child.sync(context=batch_context)

    def _reached_dry_run_limit(self) -> bool:
        # A dry run (`--test`) stops the parent after ABORT_AT_RECORD_COUNT records,
        # before the last one, so the open batch is flushed at that point.
        limit = self.ABORT_AT_RECORD_COUNT
        return limit is not None and self._records_seen >= limit

    def _url_length_without_emails(self) -> int:
        lengths = [
            child.url_length_without_emails()
            for child in self.child_streams
            if isinstance(child, CompletionStream)
        ]
        return max(lengths, default=0)


class CompletionStream(ContinuStream):
    """Completions of one kind for a batch of users, from `GET /completion/<kind>`.

    A child of `users`: each context names an email batch, and one request (split only on
    414 or 404) fetches the batch. A record is one item of one user with that user's
    `user_id` and `email` added. Full refresh: the API's `from`/`until` filter on a start
    or assigned date, so a window would miss an old item whose status changed. The
    `start_date` setting is sent as `from`.
    """

    parent_stream_type = UsersStream
    # One flat STATE entry per stream, holding no batch number and no email.
    state_partitioning_keys: t.ClassVar[list[str]] = []
    # Key of the list of items in each user object of the response.
    items_key: t.ClassVar[str]

    def __init__(
        self,
        tap: t.Any,  # noqa: ANN401
        connection: Connection,
        batcher: EmailBatcher,
    ) -> None:
        """Create the stream, reading its emails from `batcher`."""
        super().__init__(tap, connection)
        self.batcher = batcher
        self.unknown_emails = 0
        self.requests_succeeded = 0

    @override
    def get_new_paginator(self) -> None:
        return None

    @override
    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        emails: list[str] = next_page_token or []
        params: dict[str, t.Any] = {"for_users": join_emails(emails)}
        since = start_timestamp(self.config)
        if since is not None:
            params["from"] = since
        return params

    @override
    def get_http_request(self, *, page: PageContext[t.Any]) -> HTTPRequest:
        request = super().get_http_request(page=page)
        request.safe_query_chars = QUERY_SAFE_CHARS
        return request

    def url_length_without_emails(self) -> int:
        """Return the length of this stream's request URL with an empty `for_users`."""
        http_request = self._batch_http_request(None, [])
        url = requests.Request("GET", http_request.url, params=http_request.encode_params())
        return len(url.prepare().url or "")

    def build_batch_request(
        self,
        context: Context | None,
        emails: list[str],
    ) -> requests.PreparedRequest:
        """Return the prepared, authenticated request for one batch of `emails`."""
        http_request = self._batch_http_request(context, emails)
        return self.build_prepared_request(
            method=http_request.method,
            url=http_request.url,
            params=http_request.encode_params(),
            headers=http_request.headers,
        )

    def _batch_http_request(self, context: Context | None, emails: list[str]) -> HTTPRequest:
        return self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=emails),
        )

    @override
    def request_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Fetch the batch in one request; on 414 or 404 split it in two and go on.

        A 404 means the API does not know an email of the batch. Splitting isolates each
        unknown email, which is skipped and counted, and every other user's items arrive.
        The batcher remembers unknown emails, so the other completion streams leave them
        out, and the URL lengths the server accepts, so that later batches fit.
        """
        batch = self.batcher.emails(context)
        emails = [email for email in batch if not self.batcher.is_unknown(email)]
        unknown_in_batch = len(batch) - len(emails)
        send = self.request_decorator(self._request)
        # Popped from the end, so the first run of emails is fetched first.
        pending = list(reversed(self.batcher.split_to_fit(emails)))
        with self.get_http_request_counter() as request_counter:
            request_counter.with_context(context)
            while pending:
                chunk = pending.pop()
                request = self.build_batch_request(context, chunk)
                url_length = len(request.url or "")
                try:
                    response = send(request, context)
                except URLTooLongError:
                    self.batcher.record_url_rejected(url_length)
                    pending.extend(self._split_too_long(chunk))
                    continue
                except NotFoundError:
                    if len(chunk) == 1:
                        self.batcher.mark_unknown(chunk[0])
                        unknown_in_batch += 1
                    else:
                        pending.extend(_halves(chunk))
                    continue
                finally:
                    request_counter.increment()
                self.batcher.record_url_accepted(url_length)
                self.requests_succeeded += 1
                yield from self.parse_response(response)
        self._report_unknown(unknown_in_batch, len(batch))

    def _split_too_long(self, chunk: list[str]) -> list[list[str]]:
        if len(chunk) == 1:
            self.logger.warning(
                "%s: skipped 1 user whose email alone makes the URL too long for the API (414)",
                self.name,
            )
            return []
        self.logger.info(
            "%s returned 414 URI Too Long; splitting a batch of %d emails",
            self.endpoint,
            len(chunk),
        )
        return _halves(chunk)

    def _report_unknown(self, unknown: int, batch_size: int) -> None:
        if not unknown:
            return
        if unknown == batch_size > 1 and not self.requests_succeeded:
            # Not one request to this endpoint has succeeded in this run, so the endpoint
            # itself is more likely wrong than every user of a whole batch unknown.
            msg = (
                f"{self.endpoint} returned 404 Not Found for each of the {batch_size} "
                "emails of the first batch; check api_url."
            )
            raise APIRequestError(msg)
        self.unknown_emails += unknown
        self.logger.warning(
            "%s: skipped %d email(s) that the API does not recognise (404); "
            "%d skipped in this stream so far",
            self.name,
            unknown,
            self.unknown_emails,
        )

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        for user in super().parse_response(response):
            items = user.get(self.items_key)
            if not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, dict):
                    yield {**item, "user_id": user.get("user_id"), "email": user.get("email")}

    @override
    def post_process(
        self,
        row: dict[str, t.Any],
        context: Context | None = None,
    ) -> dict[str, t.Any] | None:
        missing = [key for key in self.primary_keys or () if row.get(key) in {None, ""}]
        if missing:
            self.logger.warning(
                "%s: skipped an item without %s for user_id=%s",
                self.name,
                " and ".join(missing),
                row.get("user_id"),
            )
            return None
        return super().post_process(row, context)


def _halves(emails: list[str]) -> list[list[str]]:
    middle = len(emails) // 2
    # Popped from the end, so the first half is fetched first.
    return [emails[middle:], emails[:middle]]


class AssessmentsStream(CompletionStream):
    """Assessment results per user, from `GET /completion/assessments`."""

    name = "assessments"
    path = "/completion/assessments"
    primary_keys = ("user_id", "id")
    items_key = "assessments"


class AssignmentsStream(CompletionStream):
    """Assignments per user, from `GET /completion/assignments`.

    `assigned_content` stays a nested array of the content items of the assignment.
    """

    name = "assignments"
    path = "/completion/assignments"
    primary_keys = ("user_id", "assignment_id")
    items_key = "assignments"


class TracksStream(CompletionStream):
    """Learning-track progress per user, from `GET /completion/tracks`."""

    name = "tracks"
    path = "/completion/tracks"
    primary_keys = ("user_id", "id")
    items_key = "tracks"


class WorkshopsStream(CompletionStream):
    """Workshop attendance per user, from `GET /completion/workshops`."""

    name = "workshops"
    path = "/completion/workshops"
    primary_keys = ("user_id", "id")
    items_key = "workshops"


COMPLETION_STREAMS: tuple[type[CompletionStream], ...] = (
    AssessmentsStream,
    AssignmentsStream,
    TracksStream,
    WorkshopsStream,
)
