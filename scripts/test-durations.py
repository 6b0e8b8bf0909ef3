#!/usr/bin/env python3
"""Seconds per test module from a pytest junit XML, the costliest first (see tests/support/ordering.py).

    bash scripts/test.sh --junitxml=/tmp/run.xml
    .venv/bin/python scripts/test-durations.py /tmp/run.xml [--top 25] [--compare /tmp/before.xml]

A test case's time in the XML is its setup, call and teardown together, so a module-scoped fixture (a server, a
browser, a trained model) counts in the module that built it. Under xdist the sum is worker time, not wall time:
the two workers run modules side by side. `--compare` adds the module's test count and seconds in an earlier run
and the change (compare a module only where the counts match: an interrupted run holds part of a module).
Standard library only, so it runs from any Python.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_of(classname: str) -> str:
    """`tests.api.test_cli` or `tests.api.test_cli.TestX` -> `tests/api/test_cli.py` (the longest prefix that is a
    file; the dotted name as it is when none is)."""
    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        candidate = "/".join(parts[:end]) + ".py"
        if (ROOT / candidate).exists():
            return candidate
    return classname


def per_module(path: Path) -> dict[str, tuple[float, int, int]]:
    """module -> (seconds, tests, failures or errors)."""
    seconds: dict[str, float] = defaultdict(float)
    tests: dict[str, int] = defaultdict(int)
    failed: dict[str, int] = defaultdict(int)
    for case in ET.parse(path).getroot().iter("testcase"):  # noqa: S314 - our own pytest's output
        module = module_of(case.get("classname", ""))
        seconds[module] += float(case.get("time", 0) or 0)
        tests[module] += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed[module] += 1
    return {m: (seconds[m], tests[m], failed[m]) for m in seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("xml", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--compare", type=Path, help="an earlier run's junit XML")
    args = parser.parse_args()
    now = per_module(args.xml)
    before = per_module(args.compare) if args.compare else {}
    ranked = sorted(now.items(), key=lambda kv: -kv[1][0])
    header = "| # | module | tests | seconds |" + (" tests before | before | change |" if before else "")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for rank, (module, (secs, count, failed)) in enumerate(ranked[: args.top], 1):
        note = f" ({failed} failed)" if failed else ""
        row = f"| {rank} | {module}{note} | {count} | {secs:.1f} |"
        if before:
            old, old_count, _ = before.get(module, (0.0, 0, 0))
            row += f" {old_count} | {old:.1f} | {secs - old:+.1f} |"
        print(row)
    total = sum(s for s, _, _ in now.values())
    count = sum(c for _, c, _ in now.values())
    line = f"| | all {len(now)} modules | {count} | {total:.1f} |"
    if before:  # the earlier run's modules, all of them (an interrupted run holds fewer)
        old_total = sum(s for s, _, _ in before.values())
        old_count = sum(c for _, c, _ in before.values())
        line += f" {old_count} | {old_total:.1f} | {total - old_total:+.1f} |"
    print(line)


if __name__ == "__main__":
    main()
