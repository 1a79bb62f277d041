"""Conformance of API values to the stream schemas: one policy per kind of odd value.

| value | policy |
|---|---|
| date-time with any offset | converted to UTC, ISO 8601 |
| date-time without an offset | taken as UTC |
| date only (`2020-04-28`) | midnight UTC that day |
| `0001-01-01T00:00:00Z` (Go's zero time, "not set") | null, WARNING |
| date that does not parse, is empty or out of range | null, WARNING |
| number or boolean sent as a string that parses | converted |
| number or boolean that does not parse | null, WARNING |
| object or array where the schema declares another type | null, WARNING |
| null anywhere | kept |
| field not in the schema | dropped, logged once per stream and field |

A WARNING names the stream, the field and the record's key fields (ids, never an email).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import typing as t

if t.TYPE_CHECKING:
    import logging

JSONSchema = t.Mapping[str, t.Any]

# Go's zero time, which the API sends for a date that was never set.
ZERO_TIME = dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc)

# At most this many WARNING lines for one stream and field; the rest are counted.
WARNINGS_PER_FIELD = 5

_TRUE_STRINGS = frozenset({"true", "t", "1", "yes"})
_FALSE_STRINGS = frozenset({"false", "f", "0", "no"})


class UnusableValueError(ValueError):
    """A value that cannot be conformed to its schema, with the reason."""


# ISO 8601 extended format: a date, optionally a time with any number of fraction digits,
# and an offset with or without a colon. Parsed by hand because `datetime.fromisoformat`
# accepts only 3 or 6 fraction digits and `+hh:mm` offsets before Python 3.11, and Go
# (which serves this API) trims trailing zeros from fractions.
_ISO_DATETIME = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?"
    r"(?P<offset>[Zz]|(?P<sign>[+-])(?P<offset_hours>\d{2})(?::?(?P<offset_minutes>\d{2}))?)?)?"
)


def parse_datetime(value: str) -> dt.datetime:
    """Parse an ISO 8601 date-time or date into an aware UTC datetime.

    A value without an offset is taken as UTC, and a date alone as midnight UTC.

    Raises:
        UnusableValueError: If the value does not parse, is out of range, or is Go's
            zero time.
    """
    text = value.strip()
    if not text:
        msg = "empty string"
        raise UnusableValueError(msg)
    try:
        # The C parser handles the API's usual values several times faster than the pattern.
        parsed = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    except ValueError:
        parsed = _parse_with_pattern(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    try:
        result = parsed.astimezone(dt.timezone.utc)
    except OverflowError:
        msg = "out of range"
        raise UnusableValueError(msg) from None
    if result == ZERO_TIME:
        msg = "zero time, meaning not set"
        raise UnusableValueError(msg)
    return result


def _parse_with_pattern(text: str) -> dt.datetime:
    match = _ISO_DATETIME.fullmatch(text)
    if match is None:
        msg = "not an ISO 8601 date-time"
        raise UnusableValueError(msg)
    parts = match.groupdict()
    fraction = (parts["fraction"] or "")[:6].ljust(6, "0")
    try:
        return dt.datetime(
            int(parts["year"]),
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int(fraction),
            tzinfo=_offset(parts),
        )
    except ValueError:
        msg = "not a valid date or time"
        raise UnusableValueError(msg) from None


def _offset(parts: dict[str, str | None]) -> dt.tzinfo:
    if parts["sign"] is None:
        return dt.timezone.utc
    minutes = int(parts["offset_hours"] or 0) * 60 + int(parts["offset_minutes"] or 0)
    sign = -1 if parts["sign"] == "-" else 1
    return dt.timezone(sign * dt.timedelta(minutes=minutes))


def format_datetime(value: dt.datetime) -> str:
    """Return `value` as ISO 8601 in UTC, such as ``2019-09-04T20:24:16.393000+00:00``."""
    return value.astimezone(dt.timezone.utc).isoformat()


def schema_types(schema: JSONSchema) -> set[str]:
    """Return the JSON types that `schema` allows, `null` included."""
    declared = schema.get("type", [])
    if isinstance(declared, str):
        return {declared}
    return set(declared)


Converter = t.Callable[[t.Any, dict[str, t.Any]], t.Any]

# Python types that need no conversion for each JSON type. `type(value) in ...` is exact,
# so that a bool never passes as an integer.
_NATIVE_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "boolean": frozenset({bool}),
    "integer": frozenset({int}),
    "number": frozenset({int, float}),
}


class RecordNormalizer:
    """Conform records to a stream's schema by the policies in this module's docstring.

    The schema is compiled once into one converter per field, because the tap conforms
    every record itself and sets the SDK to skip its own conformance pass. Like the SDK's
    pass, it drops fields that the schema does not declare and logs each one once.
    """

    def __init__(
        self,
        stream_name: str,
        schema: JSONSchema,
        key_fields: t.Sequence[str],
        logger: logging.Logger,
    ) -> None:
        """Create a normalizer for records of `stream_name` that follow `schema`."""
        self.stream_name = stream_name
        self.key_fields = tuple(key_fields)
        self.logger = logger
        self.nulled_values: dict[str, int] = {}
        self.dropped_fields: set[str] = set()
        self._convert_record = self._object_converter(schema, "")

    def normalize(self, record: dict[str, t.Any]) -> dict[str, t.Any]:
        """Conform `record` in place and return it."""
        return t.cast("dict[str, t.Any]", self._convert_record(record, record))

    def _converter(self, schema: JSONSchema, path: str) -> Converter:
        types = schema_types(schema)
        if "string" in types and schema.get("format") == "date-time":
            return self._guarded(path, _conform_datetime)
        if "array" in types:
            return self._array_converter(schema, path)
        if "object" in types:
            return self._object_converter(schema, path)
        native = frozenset().union(*(_NATIVE_TYPES.get(name, ()) for name in types))

        def conform_scalar(value: t.Any) -> t.Any:  # noqa: ANN401
            if type(value) in native:
                return value
            return _conform_scalar(value, types)

        return self._guarded(path, conform_scalar)

    def _guarded(self, path: str, conform: t.Callable[[t.Any], t.Any]) -> Converter:
        def convert(value: t.Any, record: dict[str, t.Any]) -> t.Any:  # noqa: ANN401
            try:
                return conform(value)
            except UnusableValueError as exc:
                self._report_null(path, record, str(exc))
                return None

        return convert

    def _array_converter(self, schema: JSONSchema, path: str) -> Converter:
        convert_item = self._converter(schema.get("items", {}), f"{path}[]")

        def convert(value: t.Any, record: dict[str, t.Any]) -> t.Any:  # noqa: ANN401
            if not isinstance(value, list):
                self._report_null(path, record, f"a {type(value).__name__}, not an array")
                return None
            return [None if item is None else convert_item(item, record) for item in value]

        return convert

    def _object_converter(self, schema: JSONSchema, path: str) -> Converter:
        fields = {
            name: self._converter(field_schema, f"{path}.{name}" if path else name)
            for name, field_schema in schema.get("properties", {}).items()
        }

        def convert(value: t.Any, record: dict[str, t.Any]) -> t.Any:  # noqa: ANN401
            if not isinstance(value, dict):
                self._report_null(path, record, f"a {type(value).__name__}, not an object")
                return None
            for name in list(value):
                convert_field = fields.get(name)
                if convert_field is None:
                    del value[name]
                    self._report_dropped(f"{path}.{name}" if path else name)
                elif value[name] is not None:
                    value[name] = convert_field(value[name], record)
            return value

        return convert

    def _report_dropped(self, path: str) -> None:
        if path in self.dropped_fields:
            return
        self.dropped_fields.add(path)
        self.logger.warning(
            "%s: dropped field %s, which the stream's schema does not declare; "
            "further values of it are dropped without a message",
            self.stream_name,
            path,
        )

    def _report_null(self, path: str, record: dict[str, t.Any], reason: str) -> None:
        count = self.nulled_values.get(path, 0) + 1
        self.nulled_values[path] = count
        if count > WARNINGS_PER_FIELD:
            return
        keys = ", ".join(f"{key}={record.get(key)!s}" for key in self.key_fields)
        suffix = (
            f"; further values of {path} set to null in this stream are not logged"
            if count == WARNINGS_PER_FIELD
            else ""
        )
        self.logger.warning(
            "%s: set %s to null for record (%s): %s%s",
            self.stream_name,
            path,
            keys,
            reason,
            suffix,
        )


def _conform_datetime(value: t.Any) -> str:  # noqa: ANN401
    if not isinstance(value, str):
        msg = f"a {type(value).__name__}, not a date-time string"
        raise UnusableValueError(msg)
    return format_datetime(parse_datetime(value))


def _conform_scalar(value: t.Any, types: set[str]) -> t.Any:  # noqa: ANN401, C901, PLR0911
    """Return `value` as one of the JSON `types`, converting strings that parse."""
    if isinstance(value, bool):
        if "boolean" in types:
            return value
    elif isinstance(value, (int, float)):
        if "integer" in types and float(value).is_integer():
            return int(value)
        if "number" in types:
            return value
        if "string" in types:
            return str(value)
    elif isinstance(value, str):
        if "string" in types:
            return value
        if "integer" in types or "number" in types:
            return _number_from_string(value, integer="number" not in types)
        if "boolean" in types:
            return _boolean_from_string(value)
    elif isinstance(value, (dict, list)):
        msg = f"a {type(value).__name__}, where a scalar is expected"
        raise UnusableValueError(msg)
    if not types - {"null"}:
        return value
    msg = f"a {type(value).__name__}, not {' or '.join(sorted(types - {'null'}))}"
    raise UnusableValueError(msg)


def _number_from_string(value: str, *, integer: bool) -> int | float:
    try:
        number = float(value.strip())
    except ValueError:
        msg = "a string that is not a number"
        raise UnusableValueError(msg) from None
    if not math.isfinite(number):
        msg = "not a finite number"
        raise UnusableValueError(msg)
    if integer:
        if not number.is_integer():
            msg = "a string that is not a whole number"
            raise UnusableValueError(msg)
        return int(number)
    return int(number) if number.is_integer() and "." not in value else number


def _boolean_from_string(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE_STRINGS:
        return True
    if lowered in _FALSE_STRINGS:
        return False
    msg = "a string that is not a boolean"
    raise UnusableValueError(msg)
