"""Token expiry in both forms, and renewal."""

from __future__ import annotations

import pytest

from tap_continu.auth import expiry_from_response

ISSUED = 1_800_000_000.0


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [
        (3600, ISSUED + 3600),
        ("3600", ISSUED + 3600),
        (ISSUED + 7200, ISSUED + 7200),
        (int(ISSUED + 7200), ISSUED + 7200),
        ((ISSUED + 7200) * 1000, ISSUED + 7200),
        (None, None),
        ("soon", None),
        (0, None),
        (-5, None),
        (True, None),
    ],
)
def test_expiry_from_response(expires_in: object, expected: float | None) -> None:
    assert expiry_from_response(expires_in, ISSUED) == expected
