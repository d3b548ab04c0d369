"""PII scrubbing: what must go, and what must stay."""

import pytest

from feedback.pii import Scrubber


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("write to ana.lopez@example.com", "write to [EMAIL]", "EMAIL"),
        ("call +1 (555) 123-4567 today", "call [PHONE] today", "PHONE"),
        ("my number is 030 1234 5678", "my number is [PHONE]", "PHONE"),
        ("text +15551234567.", "text [PHONE].", "PHONE"),
        ("card 4111 1111 1111 1111 please", "card [CARD] please", "CARD"),
        ("card 4111-1111-1111-1111", "card [CARD]", "CARD"),
    ],
)
def test_scrubs(text: str, expected: str, kind: str) -> None:
    scrubber = Scrubber()
    assert scrubber.scrub(text) == expected
    assert scrubber.counts == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "order 1234567890123 shipped",  # fails the Luhn check, no separators: not a phone
        "released 2026-11-24, version 2.3.4",
        "on 24.11.2026 at 10:30",
        "3 items in 12 boxes",
    ],
)
def test_leaves_ordinary_numbers(text: str) -> None:
    scrubber = Scrubber()
    assert scrubber.scrub(text) == text
    assert not scrubber.counts


def test_configured_patterns() -> None:
    scrubber = Scrubber({"ticket": r"TCK-\d{6}"})
    assert scrubber.scrub("see TCK-123456 and TCK-654321") == "see [TICKET] and [TICKET]"
    assert scrubber.counts == {"TICKET": 2}
