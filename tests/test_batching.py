"""Packing emails into URL-sized batches."""

from __future__ import annotations

import itertools
from urllib.parse import parse_qs, urlsplit

import requests

from tap_continu.batching import (
    EmailBatcher,
    encode_query_value,
    encoded_email_length,
    is_queryable_email,
    join_emails,
)

PREFIX = "https://usw2-api.continu.co/v3/completion/assessments?for_users="


def pack(emails: list[str], max_url_length: int) -> list[list[str]]:
    batcher = EmailBatcher(max_url_length)
    batcher.set_url_prefix_length(len(PREFIX))
    batches = []
    for email in emails:
        closed = batcher.add(email)
        if closed:
            batches.append(closed.emails)
    final = batcher.flush()
    if final:
        batches.append(final.emails)
    return batches


def prepared_url(emails: list[str]) -> str:
    query = "for_users=" + encode_query_value(join_emails(emails))
    request = requests.Request("GET", PREFIX.split("?", maxsplit=1)[0], params=query).prepare()
    return request.url or ""


def test_plus_is_percent_encoded() -> None:
    assert encode_query_value("a+b@x.com") == "a%2Bb@x.com"


def test_encoded_length_matches_requests() -> None:
    emails = ["Zoë.o'Brien+tag@Example.com", "plain@example.com", "x y@example.com"]
    url = prepared_url(emails)
    expected = len(PREFIX) + sum(encoded_email_length(e) for e in emails) + len(emails) - 1
    assert len(url) == expected


def test_server_decodes_same_emails() -> None:
    emails = ["a+b@x.com", "Caps.Name@Example.COM", "o'neil@x.com", "zoë@x.com"]
    query = urlsplit(prepared_url(emails)).query
    assert parse_qs(query)["for_users"][0].split(",") == emails


def test_every_batch_url_fits_and_keeps_order() -> None:
    emails = [f"user{i}+{'x' * (i % 17)}@example.com" for i in range(500)]
    batches = pack(emails, 600)
    assert [e for batch in batches for e in batch] == emails
    for batch in batches:
        assert len(prepared_url(batch)) <= 600


def test_batches_are_full() -> None:
    emails = [f"user{i:04d}@example.com" for i in range(1000)]
    batches = pack(emails, 600)
    for batch, following in itertools.pairwise(batches):
        assert len(prepared_url([*batch, following[0]])) > 600


def test_too_long_email_is_skipped_and_counted() -> None:
    batcher = EmailBatcher(len(PREFIX) + 20)
    batcher.set_url_prefix_length(len(PREFIX))
    assert batcher.add("x" * 40 + "@example.com") is None
    assert batcher.emails_too_long == 1
    assert batcher.flush() is None


def test_batch_lookup_and_release() -> None:
    batcher = EmailBatcher(len(PREFIX) + 30)
    batcher.set_url_prefix_length(len(PREFIX))
    assert batcher.add("first@example.com") is None
    closed = batcher.add("second@example.com")
    assert closed is not None
    assert batcher.emails(closed.context()) == ["first@example.com"]
    batcher.release(closed)
    assert closed.context() == {"user_batch": 1}


def test_queryable_emails() -> None:
    assert is_queryable_email("a@b.c")
    assert not is_queryable_email(None)
    assert not is_queryable_email("")
    assert not is_queryable_email('"a,b"@example.com')
