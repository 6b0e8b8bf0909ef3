"""The order test modules run in: the longest first, so that with two workers none of them ends the run alone.

pytest-xdist (`--dist loadfile`) hands whole modules to the workers in the order they were collected, as each
worker asks for more (scripts/test.sh turns off xdist's own reordering by test count, which put the one-test
modules - the real Rasa server, the fault suite - last, where each then ran for a minute or two on one worker
while the other sat idle). Here modules holding `slow` tests come first, the costliest first (the marker's
`seconds=`, a rough cost of the module on the reference machine: a scheduling hint, never asserted), then the
rest with the most tests first, so the run ends on small modules that fill the gaps. Tests inside a module keep
their order (pytest's grouping by fixture parameters is untouched). Outside xdist only the order changes.

Where the time goes: `bash scripts/test.sh --junitxml=/tmp/run.xml`, then `python3 scripts/test-durations.py
/tmp/run.xml --top 25 [--compare /tmp/before.xml]` prints the seconds per module (setup, call and teardown summed,
so module fixtures count where they are built), costliest first - the numbers to base `seconds=` on. An
interrupted run (Ctrl-C, SIGINT to pytest) still writes the XML of the tests that finished.
"""

from __future__ import annotations

import pytest

SLOW_DEFAULT_SECONDS = 30.0


def _slow_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("slow")
    if marker is None:
        return 0.0
    return float(marker.kwargs.get("seconds", SLOW_DEFAULT_SECONDS))


def module_order(items: list[pytest.Item]) -> list[pytest.Item]:
    """`items` regrouped by module: slow modules by their largest `slow` seconds, then the others by test count
    (both descending), ties in collection order."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)

    def key(entry: tuple[int, tuple[str, list[pytest.Item]]]) -> tuple[int, float, int]:
        index, (_, group) = entry
        slow = max(_slow_seconds(item) for item in group)
        return (0, -slow, index) if slow else (1, -len(group), index)

    ordered = sorted(enumerate(modules.items()), key=key)
    return [item for _, (_, group) in ordered for item in group]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items[:] = module_order(items)
