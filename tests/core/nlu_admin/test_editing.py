"""Two admins editing one intent's answer variants or examples at once (PostgreSQL; SQLite runs one writer at a
time): the second waits for the first (the intent row is locked) and works on what the first committed, or gets a
409 with the reason - never a unique-constraint 500."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.errors import ConflictError, ValidationFailedError
from core.nlu_admin import editing, service

Edit = Callable[[AsyncSession], Awaitable[Any]]


@pytest.fixture
def pg(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite runs one writer at a time")


async def _intent(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with sessionmaker() as s, s.begin():
        await service.create_intent(s, "race", "", None)
        first = await service.add_example(s, "race", "hello there", None)
        second = await service.add_example(s, "race", "good evening", None)
        await editing.set_variants(s, "race", "en", ["x"], None)
        return first.id, second.id


async def _one_after_another(db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], first: Edit,
                             second: Edit) -> Any:
    """`first` done and held uncommitted while `second` starts in its own transaction; once `second` waits for a
    lock, `first` commits. What `second` returned (or raised)."""
    async def run_second() -> Any:
        async with sessionmaker() as s, s.begin():
            return await second(s)

    async with sessionmaker() as held:
        await first(held)
        waiting = asyncio.create_task(run_second())
        try:
            # Autocommit: within one transaction PostgreSQL shows the same pg_stat_activity snapshot every time.
            async with db_engine.connect() as watch:
                await watch.execution_options(isolation_level="AUTOCOMMIT")
                blocked = 0
                deadline = asyncio.get_running_loop().time() + 60
                while asyncio.get_running_loop().time() < deadline:
                    blocked = await watch.scalar(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"))
                    if blocked or waiting.done():
                        break
                    await asyncio.sleep(0.005)
            assert not waiting.done() and blocked == 1
            await held.commit()
            return await asyncio.wait_for(waiting, 30)
        finally:
            if not waiting.done():
                waiting.cancel()
                await asyncio.gather(waiting, return_exceptions=True)


async def test_a_second_admin_adding_a_variant_waits_for_the_first(pg: None, db_engine: AsyncEngine,
                                                                   sessionmaker: async_sessionmaker[AsyncSession]
                                                                   ) -> None:
    await _intent(sessionmaker)

    def add(variant: str) -> Edit:
        async def edit(s: AsyncSession) -> list[str]:
            return [r.text for r in await editing.set_variants(s, "race", "en", ["x", variant], None)]
        return edit

    # Without the lock the second read one row, inserted (race, en, 1) too and failed on the unique constraint.
    assert await _one_after_another(db_engine, sessionmaker, add("a"), add("b")) == ["x", "b"]
    async with sessionmaker() as s:
        assert [r.text for r in editing.variants_of(await service.get_intent(s, "race"), "en")] == ["x", "b"]


async def test_a_second_admin_adding_the_same_example_gets_a_conflict(
        pg: None, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await _intent(sessionmaker)

    async def second(s: AsyncSession) -> Any:
        with pytest.raises(ConflictError) as refused:
            await service.add_example(s, "race", "see you soon", None)
        return refused.value.details.get("reason")

    # Without the lock both inserted (race, "see you soon") and the second failed on the unique constraint (500).
    assert await _one_after_another(
        db_engine, sessionmaker, lambda s: service.add_example(s, "race", "see you soon", None),
        second) == "duplicate_example"


async def test_an_example_text_taken_meanwhile_is_a_conflict_with_its_reason(
        pg: None, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    hello, evening = await _intent(sessionmaker)

    async def second(s: AsyncSession) -> Any:
        with pytest.raises(ConflictError) as refused:
            await editing.set_example_markup(s, evening, "good [morning](time)", None)
        return refused.value.details["reason"]

    assert await _one_after_another(
        db_engine, sessionmaker,
        lambda s: editing.set_example_markup(s, hello, "good morning", None), second) == "duplicate_example"


@pytest.mark.parametrize(("pattern", "refused"), [
    (r"(a+)+$", True), (r"(\w*\s?)*", True), (r"(x{1,9})+", True), (r"(?:a|b+)*", True), (r"(?=(a+))+x", True),
    (r"\b\d{6}\b", False), (r"(\d{3}-)+", False), (r"\d+\s*\d+", False), (r"ORD-\d{3,8}", False),
    (r"[a-z]+@[a-z]+\.(com|ru)", False), (r"(a+)?", False)])
def test_a_regex_with_a_variable_repeat_inside_a_repeat_is_refused_with_its_reason(pattern: str,
                                                                                  refused: bool) -> None:
    """Catastrophic backtracking: `(a+)+$` on a 5,000-character message would stall message handling."""
    if not refused:
        assert editing.check_item("regex", "thing", pattern) == ("thing", pattern)
        return
    with pytest.raises(ValidationFailedError) as caught:
        editing.check_item("regex", "thing", pattern)
    assert caught.value.details["reason"] == "nested_repeat" and "(a+)+" in caught.value.message
