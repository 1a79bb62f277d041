"""Stop conditions of the id_from paginator."""

from __future__ import annotations

import logging

import pytest

from tap_continu.pagination import IdFromPaginator


class Page:
    """Stands in for a response: the paginator reads only the parsed body."""

    def __init__(self, ids: list[str]) -> None:
        self.body = [{"id": user_id} for user_id in ids]


def paginator(page_size: int = 3) -> IdFromPaginator:
    return IdFromPaginator(page_size, lambda page: page.body, logging.getLogger("pages"))


def walk(pages: list[list[str]], page_size: int = 3) -> list[str | None]:
    """Return the id_from of every request made until the paginator stops."""
    pager = paginator(page_size)
    cursors = []
    for ids in pages:
        cursors.append(pager.current_value)
        pager.advance(Page(ids))
        if pager.finished:
            break
    return cursors


def test_full_pages_advance_to_last_id() -> None:
    assert walk([["a", "b", "c"], ["d", "e", "f"], ["g"]]) == [None, "c", "f"]


def test_stops_on_short_page() -> None:
    assert walk([["a", "b"], ["never"]]) == [None]


def test_stops_on_empty_page() -> None:
    assert walk([["a", "b", "c"], [], ["never"]]) == [None, "c"]


def test_inclusive_server_pages_advance() -> None:
    pages = [["a", "b", "c"], ["c", "d", "e"], ["e", "f"]]
    assert walk(pages) == [None, "c", "e"]


def test_stops_when_cursor_does_not_advance() -> None:
    pages = [["a", "b", "c"], ["x", "y", "c"], ["never"]]
    assert walk(pages) == [None, "c"]


def test_stops_when_cursor_comes_back() -> None:
    pages = [["a", "b", "c"], ["d", "e", "f"], ["x", "y", "c"], ["never"]]
    assert walk(pages) == [None, "c", "f"]


@pytest.mark.parametrize("last", [{"name": "no id"}, {"id": ""}, {"id": None}])
def test_stops_when_last_user_has_no_id(last: dict) -> None:
    pager = paginator()
    page = Page(["a", "b"])
    page.body.append(last)
    pager.advance(page)
    assert pager.finished
