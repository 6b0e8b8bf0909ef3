"""The list's tag conditions: only from tag ids looked up first (spelled into the SQL so the planner can tell a rare
tag from a common one), never planned blind by name."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql

from core.tickets.repository import TicketFilter, conditions, visible


def sql(flt: TicketFilter) -> list[str]:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return [str(c.compile(dialect=dialect, compile_kwargs={"literal_binds": True})) for c in conditions(flt)]


def test_tag_conditions_come_from_the_ids_looked_up() -> None:
    with pytest.raises(ValueError, match="tag_ids"):
        conditions(TicketFilter(tags=("vip",)))
    both = sql(TicketFilter(tags=("vip", "billing"), tag_ids=(7, 12)))[len(visible()):]
    assert len(both) == 2 and "ticket_tags.tag_id = 7" in both[0] and "ticket_tags.tag_id = 12" in both[1]
    assert sql(TicketFilter(tags=("vip", "nobody-uses-this"), tag_ids=(7,)))[len(visible()):] == ["false"]
