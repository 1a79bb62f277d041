"""Time a server alone: send a full sync's requests and discard the response bodies.

The requests are the tap's: one token request, the `/data/users` pages and one request per
email batch for each completion endpoint. Only the users pages are parsed (for the
`id_from` cursor and the emails). The client is `http.client` on one keep-alive
connection, so the time is mostly the server's. It prints one JSON object:
``{"seconds": ..., "requests": ..., "response_bytes": ...}``.

Run: ``python -m benchmarks.serve_time --api-url http://127.0.0.1:PORT/v3``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from urllib.parse import urlencode, urlsplit

from benchmarks.baseline import (
    COMPLETION_STREAMS,
    DEFAULT_MAX_URL_LENGTH,
    USERS_PAGE_SIZE,
    batch_query,
    email_capacity,
    is_queryable,
    pack_emails,
)

HOST = "127.0.0.1"
TIMEOUT_SECONDS = 300


class PlainClient:
    """One keep-alive HTTP connection to 127.0.0.1 that counts requests and bytes."""

    def __init__(self, api_url: str) -> None:
        parts = urlsplit(api_url)
        if parts.hostname != HOST or parts.port is None:
            msg = f"--api-url must be http://{HOST}:PORT/..., got {api_url!r}"
            raise SystemExit(msg)
        self.prefix = parts.path.rstrip("/")
        self.connection = http.client.HTTPConnection(HOST, parts.port, timeout=TIMEOUT_SECONDS)
        self.headers: dict[str, str] = {"Accept": "application/json"}
        self.requests = 0
        self.response_bytes = 0

    def request(self, method: str, target: str, body: bytes | None = None) -> bytes:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.connection.request(method, self.prefix + target, body=body, headers=headers)
        response = self.connection.getresponse()
        payload = response.read()
        self.requests += 1
        self.response_bytes += len(payload)
        if response.status != http.client.OK:
            msg = f"{method} {target[:80]} answered {response.status}"
            raise RuntimeError(msg)
        return payload


def fetch_sync(client: PlainClient, api_url: str, max_url_length: int) -> None:
    credentials = {"client_id": "sim-client", "client_secret": "sim-secret"}
    body = json.dumps(credentials).encode()
    token = json.loads(client.request("POST", "/oauth2/access-token", body))
    client.headers["Authorization"] = f"Bearer {token['access_token']}"

    emails: list[str] = []
    cursor: str | None = None
    while True:
        parameters: dict[str, str | int] = {"list_size": USERS_PAGE_SIZE, "list_type": "full"}
        if cursor is not None:
            parameters["id_from"] = cursor
        users = json.loads(client.request("GET", "/data/users?" + urlencode(parameters)))
        emails.extend(user["email"] for user in users if is_queryable(user.get("email")))
        if len(users) < USERS_PAGE_SIZE:
            break
        cursor = users[-1]["id"]

    for batch in pack_emails(emails, email_capacity(api_url, max_url_length)):
        query = batch_query(batch)
        for stream in COMPLETION_STREAMS:
            client.request("GET", f"/completion/{stream}?{query}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serve_time",
        description="Time a full sync's requests with bodies discarded, and print JSON.",
    )
    parser.add_argument("--api-url", required=True, help="API base URL on 127.0.0.1")
    parser.add_argument(
        "--max-url-length",
        type=int,
        default=DEFAULT_MAX_URL_LENGTH,
        help="maximum completion URL length in bytes, as the tap's setting",
    )
    args = parser.parse_args(argv)
    client = PlainClient(args.api_url)
    started = time.perf_counter()
    fetch_sync(client, args.api_url, args.max_url_length)
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "requests": client.requests,
        "response_bytes": client.response_bytes,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
