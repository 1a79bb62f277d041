"""The discovered stream schemas: plain nullable types, date-time formats and field coverage.

Warehouse targets build columns from these schemas, so a property without a plain `type`
becomes an untyped column, a non-nullable one rejects the API's nulls, and a date-time without
`format: date-time` becomes a text column.
"""

from __future__ import annotations

import functools
import typing as t

import pytest

from tap_continu.tap import TapContinu
from tests.simulator import STREAMS, Dataset
from tests.simulator.data import parse_timestamp
from tests.support import ALL_STREAMS, PRIMARY_KEYS

if t.TYPE_CHECKING:
    from collections.abc import Iterator

JSON_TYPES = {"string", "integer", "number", "boolean", "object", "array", "null"}
# Suffixes of the API's date-time field names: created_at, hired_on, last_login, due_date.
DATETIME_SUFFIXES = ("_at", "_on", "_login", "_date")


@functools.cache
def catalog() -> dict[str, dict[str, t.Any]]:
    """Return the discovered catalog entries by stream. Discovery sends no request."""
    tap = TapContinu(config={"client_id": "unused", "client_secret": "unused"})
    return {entry["tap_stream_id"]: entry for entry in tap.catalog_dict["streams"]}


def walk(schema: dict[str, t.Any], path: str) -> Iterator[tuple[str, dict[str, t.Any]]]:
    """Yield every property schema below `schema`, array items included, with its path."""
    for name, child in schema.get("properties", {}).items():
        yield f"{path}.{name}", child
        yield from walk(child, f"{path}.{name}")
    items = schema.get("items")
    if isinstance(items, dict):
        yield f"{path}[]", items
        yield from walk(items, f"{path}[]")


def types_of(schema: dict[str, t.Any]) -> set[str]:
    declared = schema.get("type", [])
    return {declared} if isinstance(declared, str) else set(declared)


def sample_records(stream: str) -> Iterator[dict[str, t.Any]]:
    """Yield the simulator's records of `stream` in both API editions, without bad data."""
    for edition in ("2020", "later"):
        dataset = Dataset(seed=7, users=150, edition=edition)
        for index in range(len(dataset)):
            if stream == "users":
                yield dataset.user(index)
            else:
                yield from dataset.completions(stream, index)


def datetime_paths(record: dict[str, t.Any], path: str) -> Iterator[str]:
    """Yield the paths of the values in `record` that are ISO 8601 date-time strings."""
    for name, value in record.items():
        if isinstance(value, str) and "T" in value and parse_timestamp(value) is not None:
            yield f"{path}.{name}"
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield from datetime_paths(item, f"{path}.{name}[]")


def value_paths(record: dict[str, t.Any], path: str) -> Iterator[str]:
    """Yield the path of every field in `record` and in the objects of its arrays."""
    for name, value in record.items():
        yield f"{path}.{name}"
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield from value_paths(item, f"{path}.{name}[]")


def test_catalog_lists_streams() -> None:
    assert sorted(catalog()) == sorted(ALL_STREAMS)


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_key_properties(stream: str) -> None:
    entry = catalog()[stream]
    assert tuple(entry["key_properties"]) == PRIMARY_KEYS[stream]
    for name in entry["key_properties"]:
        assert name in entry["schema"]["properties"], f"{stream}: key {name} not in the schema"


def test_users_replication_key() -> None:
    entry = catalog()["users"]
    assert entry["replication_key"] == "updated_at"
    assert entry["replication_method"] == "INCREMENTAL"


@pytest.mark.parametrize("stream", STREAMS)
def test_completions_full_table(stream: str) -> None:
    assert catalog()[stream]["replication_method"] == "FULL_TABLE"


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_properties_have_plain_type(stream: str) -> None:
    paths = list(walk(catalog()[stream]["schema"], stream))
    assert len(paths) > 0
    for path, schema in paths:
        assert schema, f"{path}: empty schema"
        assert "type" in schema, f"{path}: no type (anyOf or similar without a plain type)"
        assert types_of(schema) <= JSON_TYPES, f"{path}: unknown type {schema['type']}"
        assert len(types_of(schema) - {"null"}) == 1, f"{path}: type {schema['type']}"


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_properties_nullable(stream: str) -> None:
    for path, schema in walk(catalog()[stream]["schema"], stream):
        assert "null" in types_of(schema), f"{path}: not nullable"


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_datetime_names_have_format(stream: str) -> None:
    for path, schema in walk(catalog()[stream]["schema"], stream):
        name = path.rsplit(".", 1)[-1]
        if name == "date" or name.endswith(DATETIME_SUFFIXES):
            assert schema.get("format") == "date-time", f"{path}: no format date-time"


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_datetime_values_have_format(stream: str) -> None:
    schemas = dict(walk(catalog()[stream]["schema"], stream))
    found = {path for record in sample_records(stream) for path in datetime_paths(record, stream)}
    assert len(found) > 0
    for path in sorted(found):
        assert schemas.get(path, {}).get("format") == "date-time", f"{path}: no format date-time"


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_datetime_format_on_strings(stream: str) -> None:
    for path, schema in walk(catalog()[stream]["schema"], stream):
        if schema.get("format") == "date-time":
            assert types_of(schema) == {"string", "null"}, f"{path}: type {schema['type']}"


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_schema_covers_api_fields(stream: str) -> None:
    schemas = dict(walk(catalog()[stream]["schema"], stream))
    found = {path for record in sample_records(stream) for path in value_paths(record, stream)}
    missing = sorted(found - set(schemas))
    assert missing == [], f"fields the API sends but the schema drops: {missing}"


@pytest.mark.parametrize("stream", ["assessments", "tracks"])
def test_both_start_date_names(stream: str) -> None:
    # The 2020 API edition sends start_date, and later editions send started_date.
    properties = catalog()[stream]["schema"]["properties"]
    assert properties["start_date"].get("format") == "date-time"
    assert properties["started_date"].get("format") == "date-time"


@pytest.mark.parametrize("stream", STREAMS)
def test_completions_carry_user(stream: str) -> None:
    properties = catalog()[stream]["schema"]["properties"]
    assert "user_id" in properties
    assert "email" in properties


@pytest.mark.parametrize("name", ["password", "provisioning_key"])
def test_users_schema_no_credentials(name: str) -> None:
    assert name not in catalog()["users"]["schema"]["properties"]
