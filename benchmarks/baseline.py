"""A plain `requests` client that makes the tap's full sync by hand, for speed comparisons.

It sends the tap's requests: one token request, the `/data/users` pages, and one request
per URL-sized email batch for each completion endpoint. It writes the tap's Singer RECORD
lines to stdout, with fields outside the stream's schema dropped and every date-time
converted to UTC. It has no pacing, retries, state, stream maps or checks beyond what
clean simulator data needs, so its speed is what a sync costs without the Singer SDK.

Run it with the tap's config file: ``python -m benchmarks.baseline --config CONFIG.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, TypeAlias, TypeGuard, Union
from urllib.parse import quote_plus

import requests

SCHEMAS_DIRECTORY = Path(__file__).resolve().parent.parent / "schemas"
COMPLETION_STREAMS = ("assessments", "assignments", "tracks", "workshops")
USERS_PAGE_SIZE = 500
DEFAULT_MAX_URL_LENGTH = 6000
REQUEST_TIMEOUT_SECONDS = 300

# The tap leaves `@` and `,` unencoded in `for_users`, so the baseline does too.
QUERY_SAFE_CHARS = "@,"

JsonObject = dict[str, Any]
# The fields of a schema object, and for each field that needs converting either True (a
# date-time) or the plan of its array's object items.
SchemaPlan: TypeAlias = tuple[frozenset[str], dict[str, Union[bool, "SchemaPlan"]]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.baseline",
        description="Sync users and completions with plain requests, writing Singer RECORDs.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        required=True,
        help="the tap's JSON config: client_id, client_secret, api_url, max_url_length",
    )
    return parser.parse_args(argv)


def schema_plan(schema: JsonObject) -> SchemaPlan:
    """Return the field names of an object schema and the fields that need converting."""
    properties = schema.get("properties", {})
    conversions: dict[str, bool | SchemaPlan] = {}
    for name, field_schema in properties.items():
        if field_schema.get("format") == "date-time":
            conversions[name] = True
        elif "properties" in field_schema.get("items", {}):
            conversions[name] = schema_plan(field_schema["items"])
    return frozenset(properties), conversions


def to_utc(value: object) -> object:
    """Convert an ISO 8601 date-time to UTC in the tap's format. Keep anything else."""
    if not isinstance(value, str) or not value:
        return value
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).isoformat()


def conform(record: JsonObject, plan: SchemaPlan) -> JsonObject:
    """Drop fields outside the schema and convert date-times to UTC, in place."""
    properties, conversions = plan
    for name in [name for name in record if name not in properties]:
        del record[name]
    for name, conversion in conversions.items():
        value = record.get(name)
        if conversion is True:
            if name in record:
                record[name] = to_utc(value)
        elif isinstance(conversion, tuple) and isinstance(value, list):
            for element in value:
                if isinstance(element, dict):
                    conform(element, conversion)
    return record


class RecordWriter:
    """Writer of Singer SCHEMA and RECORD lines for every stream, in the SDK's JSON style."""

    def __init__(self) -> None:
        self.schemas = {
            name: json.loads((SCHEMAS_DIRECTORY / f"{name}.json").read_text(encoding="utf-8"))
            for name in ("users", *COMPLETION_STREAMS)
        }
        self.plans = {name: schema_plan(schema) for name, schema in self.schemas.items()}
        self.records_written = 0

    def write_schemas(self) -> None:
        for name, schema in self.schemas.items():
            message = {"type": "SCHEMA", "stream": name, "schema": schema, "key_properties": []}
            sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")

    def write_record(self, stream: str, record: JsonObject) -> None:
        conform(record, self.plans[stream])
        message = {
            "type": "RECORD",
            "stream": stream,
            "record": record,
            "time_extracted": dt.datetime.now(dt.timezone.utc).isoformat(),
        }
        sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
        self.records_written += 1


def encode_email(email: str) -> str:
    return quote_plus(email, safe=QUERY_SAFE_CHARS)


def is_queryable(email: object) -> TypeGuard[str]:
    """Return whether the tap would send `email` in `for_users`: a non-empty string, no comma."""
    return isinstance(email, str) and bool(email.strip()) and "," not in email


def email_capacity(api_url: str, max_url_length: int) -> int:
    """Return the bytes left for the `for_users` value in every completion URL.

    Every batch must fit the longest of the four endpoints' URLs, as in the tap.
    """
    api_url = api_url.rstrip("/")
    longest_prefix = max(
        len(f"{api_url}/completion/{stream}?for_users=") for stream in COMPLETION_STREAMS
    )
    return max_url_length - longest_prefix


def pack_emails(emails: list[str], capacity: int) -> list[list[str]]:
    """Pack emails in order into batches whose encoded, comma-joined length fits `capacity`."""
    batches: list[list[str]] = []
    current: list[str] = []
    used = 0
    for email in emails:
        size = len(encode_email(email))
        if current and used + 1 + size > capacity:
            batches.append(current)
            current, used = [], 0
        used += size + (1 if current else 0)
        current.append(email)
    if current:
        batches.append(current)
    return batches


def batch_query(emails: list[str]) -> str:
    """Return the encoded query string of one completion request."""
    return "for_users=" + ",".join(encode_email(email) for email in emails)


class BaselineSync:
    """One full sync: token, user pages, and every completion batch, written as it arrives."""

    def __init__(self, config: JsonObject) -> None:
        self.api_url = str(config["api_url"]).rstrip("/")
        self.client_id = str(config["client_id"])
        self.client_secret = str(config["client_secret"])
        self.max_url_length = int(config.get("max_url_length", DEFAULT_MAX_URL_LENGTH))
        self.session = requests.Session()
        self.writer = RecordWriter()
        self.capacity = email_capacity(self.api_url, self.max_url_length)
        self.open_emails: list[str] = []
        self.open_length = 0

    def run(self) -> None:
        self.authenticate()
        self.writer.write_schemas()
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"list_size": USERS_PAGE_SIZE, "list_type": "full"}
            if cursor is not None:
                params["id_from"] = cursor
            users = self.get_json(f"{self.api_url}/data/users", params)
            for user in users:
                if user.get("id") == cursor:
                    continue
                self.writer.write_record("users", user)
                self.add_email(user.get("email"))
            if len(users) < USERS_PAGE_SIZE:
                break
            cursor = users[-1]["id"]
        if self.open_emails:
            self.sync_batch(self.open_emails)

    def authenticate(self) -> None:
        response = self.session.post(
            f"{self.api_url}/oauth2/access-token",
            json={"client_id": self.client_id, "client_secret": self.client_secret},
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        response.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def get_json(self, url: str, params: dict[str, str | int] | None = None) -> Any:
        response = self.session.get(url, params=params, timeout=REQUEST_TIMEOUT_SECONDS)
        response.raise_for_status()
        return response.json()

    def add_email(self, email: object) -> None:
        """Add an email to the open batch, syncing the batch first when the email won't fit."""
        if not is_queryable(email):
            return
        size = len(encode_email(email))
        if size > self.capacity:  # the tap skips an email that fits in no URL
            return
        separator = 1 if self.open_emails else 0
        if self.open_emails and self.open_length + separator + size > self.capacity:
            self.sync_batch(self.open_emails)
            self.open_emails, self.open_length, separator = [], 0, 0
        self.open_emails.append(email)
        self.open_length += separator + size

    def sync_batch(self, emails: list[str]) -> None:
        query = batch_query(emails)
        for stream in COMPLETION_STREAMS:
            for user in self.get_json(f"{self.api_url}/completion/{stream}?{query}"):
                for item in user.get(stream) or ():
                    record = {**item, "user_id": user.get("user_id"), "email": user.get("email")}
                    self.writer.write_record(stream, record)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = json.loads(args.config.read_text(encoding="utf-8"))
    sync = BaselineSync(config)
    sync.run()
    sys.stdout.flush()
    print(f"baseline: {sync.writer.records_written} records", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
