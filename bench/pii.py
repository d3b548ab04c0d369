"""PII scrubbing on hostile text: the e-mail pattern before (unbounded runs, quadratic on
long runs of address characters) and after (bounded parts), on the same inputs in the same
process. Prints seconds and the ratio old/new per input.

    .venv/bin/python bench/pii.py
"""

import re
import time

from feedback.pii import EMAIL, Scrubber

BEFORE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
INPUTS = {
    "20,000 letters": "a" * 20_000,
    "100,000 letters": "a" * 100_000,
    "50,000 'a.'": "a." * 50_000,
    "100,000-char correction with addresses": ("see ana.lopez@example.com " + "x" * 74) * 1_000,
}


def seconds(pattern: re.Pattern[str], text: str) -> float:
    began = time.perf_counter()
    pattern.sub("[EMAIL]", text)
    return time.perf_counter() - began


def main() -> None:
    for name, text in INPUTS.items():
        old, new = seconds(BEFORE, text), seconds(EMAIL, text)
        same = BEFORE.sub("[EMAIL]", text) == EMAIL.sub("[EMAIL]", text)
        print(
            f"{name:42s} before {old:8.3f} s  after {new:7.4f} s  "
            f"ratio {old / new:6.0f}x  same output: {same}"
        )
    began = time.perf_counter()
    Scrubber().scrub("a" * 100_000)
    print(f"whole scrubber on 100,000 letters: {time.perf_counter() - began:.3f} s")


if __name__ == "__main__":
    main()
