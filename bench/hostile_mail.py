"""Parse time of each hostile mail of the test corpus (tests/channels/email/hostile_corpus.py), and of a few
scaled-up attacks, with the outcome: the evidence that the parser's work stays bounded.

    .venv/bin/python bench/hostile_mail.py

Prints one row per mail: size, parse time (best of 3), and `stored` or the quarantine reason.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels.email.parser import UnparseableEmail, parse_email  # noqa: E402 - after the path is set
from tests.channels.email.hostile_corpus import _mail, corpus  # noqa: E402


def scaled() -> list[tuple[str, bytes]]:
    """The attacks that were super-linear before the bounds, at sizes that took minutes to hours then."""
    return [
        ("html-unclosed-tags-1mb", _mail("h", b"<a " * 330_000, content_type=b"text/html")),
        ("subject-4mb-encoded-words", _mail("s", b"x", subject=b"=?utf-8?b?0J/RgA==?= " * 200_000)),
        ("content-type-params-4mb", _mail("p", b"x", content_type=b"text/plain; " + b'a="b;"; ' * 500_000)),
        ("text-quote-lines-20mb", _mail("q", b"> q\r\n" * 4_000_000)),
        ("text-attribution-shaped-4mb", _mail("a", (b"On 1 @ " * 56 + b"\r\n") * 10_000)),
        ("cp1251-text-25mb", _mail("c", "Привет, мир. ".encode("cp1251") * 2_000_000,
                                   content_type=b"text/plain; charset=koi8-r")),
    ]


def main() -> None:
    print(f"{'mail':<34}{'bytes':>11}{'parse ms':>10}  outcome")
    for name, raw in [*corpus(), *scaled()]:
        best = float("inf")
        outcome = ""
        for _ in range(3):
            start = time.perf_counter()
            try:
                parse_email(raw)
                outcome = "stored"
            except UnparseableEmail as exc:
                outcome = f"quarantined: {exc}"
            best = min(best, time.perf_counter() - start)
        print(f"{name:<34}{len(raw):>11}{best * 1000:>10.1f}  {outcome[:70]}", flush=True)


if __name__ == "__main__":
    main()
