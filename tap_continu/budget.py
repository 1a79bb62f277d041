"""Request pacing shared by every request of a run, and the clock it runs on."""

from __future__ import annotations

import threading
import time
import typing as t

import requests
from requests.adapters import HTTPAdapter

# The API allows 50 requests per minute per client and responds with 429 past that (the "Rate
# Limit" section of the Continu API reference). The window type is not documented.
API_WINDOW_SECONDS = 60.0

# Pacing leaves this fraction of the interval as slack, so that jitter in when requests
# reach the server does not put two of them closer together than the limit allows.
PACING_SLACK = 0.02


class Clock(t.Protocol):
    """Source of time for pacing, retries and token expiry. Tests inject a fake one."""

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes back."""

    def time(self) -> float:
        """Return the current Unix time in seconds."""

    def sleep(self, seconds: float) -> None:
        """Block for `seconds`."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:  # noqa: D102
        return time.monotonic()

    def time(self) -> float:  # noqa: D102
        return time.time()

    def sleep(self, seconds: float) -> None:  # noqa: D102
        time.sleep(seconds)


class RequestBudget:
    """Space requests evenly so that no window of the API contains more than its limit.

    Requests are sent at most one per `60 / requests_per_minute` seconds (plus
    `PACING_SLACK`). Even spacing stays under the limit whatever window the server counts
    in: a rolling minute, a fixed minute, or a shorter window with a proportional limit.
    A burst would not. After a 429, `pause` delays every request until the window has
    passed.
    """

    def __init__(self, requests_per_minute: float, clock: Clock) -> None:
        """Create a budget of `requests_per_minute`, measured on `clock`."""
        if requests_per_minute <= 0:
            msg = f"requests_per_minute must be positive, got {requests_per_minute}"
            raise ValueError(msg)
        self.clock = clock
        self.interval = API_WINDOW_SECONDS / requests_per_minute * (1 + PACING_SLACK)
        self._next_send_at = float("-inf")
        self._lock = threading.Lock()
        self.requests_sent = 0
        self.seconds_waited = 0.0

    def acquire(self) -> float:
        """Block until the next request may be sent, record it, and return the wait."""
        with self._lock:
            wait = max(0.0, self._next_send_at - self.clock.monotonic())
            if wait > 0:
                self.clock.sleep(wait)
                self.seconds_waited += wait
            self._next_send_at = self.clock.monotonic() + self.interval
            self.requests_sent += 1
            return wait

    def pause(self, seconds: float) -> None:
        """Hold every request for `seconds` from now, as after a 429."""
        with self._lock:
            resume_at = self.clock.monotonic() + seconds
            self._next_send_at = max(self._next_send_at, resume_at)

    def wait_for_slot(self) -> None:
        """Block until a request could be sent, without taking the slot."""
        with self._lock:
            wait = max(0.0, self._next_send_at - self.clock.monotonic())
            if wait > 0:
                self.clock.sleep(wait)
                self.seconds_waited += wait

    def seconds_until_next_request(self) -> float:
        """Return how long a request sent now would wait for its slot, in seconds."""
        return max(0.0, self._next_send_at - self.clock.monotonic())

    def seconds_per_request(self) -> float:
        """Return the pacing interval between two requests, in seconds."""
        return self.interval


class BudgetedAdapter(HTTPAdapter):
    """Transport adapter that takes a slot from the budget before every request it sends.

    Mounted on the run's one session, it paces data requests, token requests and every
    retry alike.
    """

    def __init__(self, budget: RequestBudget) -> None:
        """Create an adapter that draws on `budget`. It never retries by itself."""
        super().__init__(max_retries=0)
        self.budget = budget

    def send(
        self,
        request: requests.PreparedRequest,
        *args: t.Any,  # noqa: ANN401
        **kwargs: t.Any,  # noqa: ANN401
    ) -> requests.Response:
        """Wait for the budget, then send `request`."""
        self.budget.acquire()
        return super().send(request, *args, **kwargs)


def budgeted_session(budget: RequestBudget, user_agent: str) -> requests.Session:
    """Return a session whose every request, over http or https, draws on `budget`."""
    session = requests.Session()
    adapter = BudgetedAdapter(budget)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    return session
