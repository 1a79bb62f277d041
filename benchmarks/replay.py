"""A caching HTTP proxy on 127.0.0.1 that replays the simulator's responses from memory.

The simulator generates every user and completion on request, which costs about as much
time as a plain client spends on the responses. To measure the client and not the server,
the records-per-second runs go through this proxy. The first request for a target is
forwarded to the simulator, and its 200 response is stored. Later requests for the same
method, path and decoded query parameters get the stored response without reaching the
simulator. Tokens are not checked, since the stored responses need none.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterator

HOST = "127.0.0.1"
UPSTREAM_TIMEOUT_SECONDS = 300
# Request headers passed on to the simulator on a cache miss.
FORWARDED_HEADERS = ("Authorization", "Content-Type", "Accept")

CacheKey = tuple[str, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class StoredResponse:
    """A response body with its status and content type, as the simulator sent it."""

    status: int
    content_type: str
    body: bytes


def cache_key(method: str, target: str) -> CacheKey:
    """Return the key of a request: method, path and its sorted, decoded query parameters.

    Two clients that order or percent-encode the same parameters differently share a key.
    """
    parts = urlsplit(target)
    parameters = tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return method, parts.path, parameters


class ReplayProxy:
    """Caching proxy in front of one upstream server. ``replay_proxy`` starts and stops it.

    Args:
        upstream_url: base URL of the simulator, such as ``http://127.0.0.1:PORT``. It must
            be on 127.0.0.1.
    """

    def __init__(self, upstream_url: str) -> None:
        upstream = urlsplit(upstream_url)
        if upstream.scheme != "http" or upstream.hostname != HOST or upstream.port is None:
            msg = f"upstream_url must be http://{HOST}:PORT, got {upstream_url!r}"
            raise ValueError(msg)
        self.upstream_port = upstream.port
        self._cache: dict[CacheKey, StoredResponse] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._local = threading.local()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the proxy. Raises RuntimeError before ``start()``."""
        if self._server is None:
            msg = "the replay proxy is not running; call start() first"
            raise RuntimeError(msg)
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def cached_bytes(self) -> int:
        """Total size of the stored bodies."""
        with self._lock:
            return sum(len(stored.body) for stored in self._cache.values())

    def reset_counts(self) -> None:
        """Zero the hit and miss counters; the stored responses stay."""
        with self._lock:
            self.hits = 0
            self.misses = 0

    def start(self) -> None:
        proxy = self

        class Handler(_ReplayHandler):
            replay = proxy

        server = ThreadingHTTPServer((HOST, 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="replay-proxy",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def respond(self, method: str, target: str, headers: Any, body: bytes) -> StoredResponse:
        """Return the stored response for this request, fetching and storing it on a miss."""
        key = cache_key(method, target)
        with self._lock:
            stored = self._cache.get(key)
            if stored is not None:
                self.hits += 1
                return stored
            self.misses += 1
        stored = self._forward(method, target, headers, body)
        if stored.status == HTTPStatus.OK:
            with self._lock:
                self._cache[key] = stored
        return stored

    def _forward(self, method: str, target: str, headers: Any, body: bytes) -> StoredResponse:
        # One upstream connection per handler thread, kept alive between misses.
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(
                HOST, self.upstream_port, timeout=UPSTREAM_TIMEOUT_SECONDS
            )
            self._local.connection = connection
        forwarded = {name: headers[name] for name in FORWARDED_HEADERS if headers.get(name)}
        try:
            connection.request(method, target, body=body or None, headers=forwarded)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            self._local.connection = None
            raise
        content_type = response.getheader("Content-Type") or "application/octet-stream"
        return StoredResponse(response.status, content_type, payload)


class _ReplayHandler(BaseHTTPRequestHandler):
    """Handler of one keep-alive client connection of the proxy."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    replay: ReplayProxy

    def do_GET(self) -> None:
        self._relay()

    def do_POST(self) -> None:
        self._relay()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Log nothing: the proxy serves thousands of requests per run."""

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            stored = self.replay.respond(self.command, self.path, self.headers, body)
        except (OSError, http.client.HTTPException) as error:
            message = f"replay proxy: upstream request failed: {type(error).__name__}\n"
            stored = StoredResponse(HTTPStatus.BAD_GATEWAY, "text/plain", message.encode())
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(stored.status)
            self.send_header("Content-Type", stored.content_type)
            self.send_header("Content-Length", str(len(stored.body)))
            self.end_headers()
            self.wfile.write(stored.body)


@contextlib.contextmanager
def replay_proxy(upstream_url: str) -> Iterator[ReplayProxy]:
    """Run a `ReplayProxy` in front of `upstream_url` for the duration of the block."""
    proxy = ReplayProxy(upstream_url)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
