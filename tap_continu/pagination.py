"""Paging through `/data/users` with the `id_from` cursor."""

from __future__ import annotations

import typing as t

from singer_sdk.pagination import BaseAPIPaginator

if t.TYPE_CHECKING:
    import logging

    import requests

    from tap_continu.client import JSONBody


class IdFromPaginator(BaseAPIPaginator[str | None]):
    """Paginator whose next token is the id of the last user on the page.

    The API reference specifies to send "the last id you received" as `id_from` but not whether
    the next page starts after that user or with it, nor how users are sorted. Paging stops
    on a page shorter than `page_size`, on an empty page, and on a cursor that does not
    advance or that comes back to an id seen before, so it never loops. The users stream
    drops the user whose id equals the cursor, which the server may send again.
    """

    def __init__(
        self,
        page_size: int,
        parse_body: t.Callable[[requests.Response], JSONBody],
        logger: logging.Logger,
    ) -> None:
        """Create a paginator for pages of `page_size` users.

        Args:
            page_size: The `list_size` requested.
            parse_body: Returns a response's parsed JSON body.
            logger: Logger for the reason paging stopped early.
        """
        super().__init__(None)
        self.page_size = page_size
        self._parse_body = parse_body
        self._logger = logger
        self._cursors_seen: set[str] = set()

    def get_next(self, response: requests.Response) -> str | None:
        """Return the next `id_from`, or None to stop paging."""
        users = self._parse_body(response)
        if not isinstance(users, list) or not users:
            return None
        if len(users) < self.page_size:
            # NOTE: an API that capped pages below `list_size` would end the sync after its
            # first page. The reference lists 500 as a valid size, so a short page is taken
            # as the last one, which saves a request per sync.
            return None
        last = users[-1]
        cursor = last.get("id") if isinstance(last, dict) else None
        if not isinstance(cursor, str) or not cursor:
            self._logger.warning("Stopped paging users: the last user on a page has no id")
            return None
        if cursor == self.current_value or cursor in self._cursors_seen:
            self._logger.warning(
                "Stopped paging users: the id_from cursor came back to id %s, seen before",
                cursor,
            )
            return None
        self._cursors_seen.add(cursor)
        return cursor
