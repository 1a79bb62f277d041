"""The fewest requests a full sync can make, computed from the simulator's emails."""

from __future__ import annotations

import dataclasses
import math

from benchmarks.baseline import (
    COMPLETION_STREAMS,
    USERS_PAGE_SIZE,
    email_capacity,
    encode_email,
    is_queryable,
    pack_emails,
)
from tests.simulator.data import Dataset


@dataclasses.dataclass(frozen=True)
class RequestBounds:
    """Request counts of a full sync of `users` users, besides what the tap sent.

    Attributes:
        users: number of users.
        pages: `/data/users` pages: floor(users / 500) + 1, since paging stops on a short page.
        minimum: 1 token request, the pages, and for each completion endpoint the lower bound
            of batches: ceil((encoded bytes of all emails + number of emails) /
            (bytes left in that endpoint's URL + 1)). No grouping of the emails into URLs of
            at most max_url_length bytes needs fewer requests.
        in_order: 1 + pages + 4 times the batches that packing the emails in user order
            gives, with the budget of the longest completion URL, as the tap packs them.
        per_user: the SDK's one-child-request-per-user pattern: 4 * users + pages + 1.
    """

    users: int
    pages: int
    minimum: int
    in_order: int
    per_user: int


def dataset_emails(users: int, seed: int) -> list[str]:
    """Return the queryable emails of the simulator's dataset, in user (id) order."""
    dataset = Dataset(seed=seed, users=users)
    emails = (dataset.email_of(index) for index in range(users))
    return [email for email in emails if is_queryable(email)]


def request_bounds(
    emails: list[str], users: int, api_url: str, max_url_length: int
) -> RequestBounds:
    """Compute the request counts for `emails` and URLs under `api_url`."""
    pages = users // USERS_PAGE_SIZE + 1
    encoded_total = sum(len(encode_email(email)) for email in emails)
    lower_bound_batches = 0
    for stream in COMPLETION_STREAMS:
        prefix = len(f"{api_url.rstrip('/')}/completion/{stream}?for_users=")
        capacity = max_url_length - prefix
        # k batches hold the emails and n - k commas, at most capacity bytes each.
        lower_bound_batches += math.ceil((encoded_total + len(emails)) / (capacity + 1))
    in_order_batches = len(pack_emails(emails, email_capacity(api_url, max_url_length)))
    return RequestBounds(
        users=users,
        pages=pages,
        minimum=1 + pages + lower_bound_batches,
        in_order=1 + pages + len(COMPLETION_STREAMS) * in_order_batches,
        per_user=len(COMPLETION_STREAMS) * users + pages + 1,
    )
