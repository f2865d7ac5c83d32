"""A signature outside the window names the clock skew, its direction and the window."""

from __future__ import annotations

import pytest

from dtim.crypto.signatures import skew_error


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (1_400, "clock skew +400 s (the signer's clock is 400 s ahead of the verifier's"),
        (650, "clock skew -350 s (the signer's clock is 350 s behind the verifier's"),
    ],
)
def test_skew_error_names_the_skew(created: int, expected: str) -> None:
    error = skew_error(created, 1_000, 300)
    assert error.reason.startswith("timestamp outside window: ")
    assert expected in error.reason
    assert "the signature window is ±300 s" in error.reason
