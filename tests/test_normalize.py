"""Conformance of odd API values to the stream schemas."""

from __future__ import annotations

import logging

import pytest

from tap_continu.normalize import RecordNormalizer, UnusableValueError, parse_datetime

SCHEMA = {
    "properties": {
        "id": {"type": ["string", "null"]},
        "when": {"type": ["string", "null"], "format": "date-time"},
        "score": {"type": ["number", "null"]},
        "attempts": {"type": ["integer", "null"]},
        "done": {"type": ["boolean", "null"]},
        "tags": {"type": ["array", "null"], "items": {"type": ["string", "null"]}},
        "content": {
            "type": ["array", "null"],
            "items": {
                "type": ["object", "null"],
                "properties": {
                    "completed_date": {"type": ["string", "null"], "format": "date-time"}
                },
            },
        },
    },
}


def normalize(record: dict, caplog: pytest.LogCaptureFixture | None = None) -> dict:
    logger = logging.getLogger("test-normalize")
    return RecordNormalizer("things", SCHEMA, ("id",), logger).normalize(record)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2018-09-11T17:23:06.667-06:00", "2018-09-11T23:23:06.667000+00:00"),
        ("2018-09-11T17:23:06Z", "2018-09-11T17:23:06+00:00"),
        ("2020-04-28T09:13:30.466+05:30", "2020-04-28T03:43:30.466000+00:00"),
        ("2020-04-28T09:13:30", "2020-04-28T09:13:30+00:00"),
        ("2020-04-28", "2020-04-28T00:00:00+00:00"),
        ("2019-09-04T20:24:16.39Z", "2019-09-04T20:24:16.390000+00:00"),
        ("2019-09-04T20:24:16.1234567Z", "2019-09-04T20:24:16.123456+00:00"),
        ("2019-09-04T20:24:16+0530", "2019-09-04T14:54:16+00:00"),
        ("2020-04-28T09:13", "2020-04-28T09:13:00+00:00"),
    ],
)
def test_dates_become_utc(value: str, expected: str) -> None:
    assert normalize({"id": "1", "when": value})["when"] == expected


@pytest.mark.parametrize(
    "value",
    [
        "not a date",
        "",
        "   ",
        "51502-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+06:00",
        "2020-02-30T00:00:00Z",
        17,
    ],
)
def test_unusable_dates_become_null_with_warning(
    value: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert normalize({"id": "rec-9", "when": value})["when"] is None
    assert "things: set when to null for record (id=rec-9)" in caplog.text


def test_numbers_and_booleans_from_strings() -> None:
    record = normalize({"id": "1", "score": "87", "attempts": "2", "done": "true"})
    assert record["score"] == 87
    assert record["attempts"] == 2
    assert record["done"] is True
    assert normalize({"id": "1", "score": "87.5"})["score"] == 87.5


def test_unparseable_number_becomes_null(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert normalize({"id": "1", "score": "lots"})["score"] is None
    assert "score" in caplog.text


def test_null_array_kept_and_wrong_type_nulled() -> None:
    assert normalize({"id": "1", "tags": None})["tags"] is None
    assert normalize({"id": "1", "tags": "a,b"})["tags"] is None


def test_nested_dates_normalized() -> None:
    record = normalize(
        {"id": "1", "content": [{"completed_date": "2019-09-04T14:24:16.393-06:00"}]}
    )
    assert record["content"][0]["completed_date"] == "2019-09-04T20:24:16.393000+00:00"


def test_warnings_are_capped_per_field(caplog: pytest.LogCaptureFixture) -> None:
    normalizer = RecordNormalizer("things", SCHEMA, ("id",), logging.getLogger("cap"))
    with caplog.at_level(logging.WARNING):
        for index in range(20):
            normalizer.normalize({"id": str(index), "when": "bad"})
    assert len(caplog.records) == 5
    assert normalizer.nulled_values["when"] == 20


def test_parse_datetime_rejects_garbage() -> None:
    with pytest.raises(UnusableValueError):
        parse_datetime("2020-13-45")
