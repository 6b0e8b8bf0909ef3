"""Every console text exists in English and Russian."""

from __future__ import annotations

import re
from pathlib import Path

from api.console.i18n import TEXTS, translator
from core.nlu_admin.models import JobState, SuggestionStatus
from core.outbox.models import OutboxStatus
from core.tickets.models import AuthorKind, Priority, TicketStatus
from core.users.models import Role

CONSOLE = Path(__file__).resolve().parents[2] / "api" / "console"
KEY = re.compile(r"""_\(\s*["']([a-z_]+\.[a-z_.]+|[a-z_]+)["']""")


def test_every_literal_key_is_translated() -> None:
    sources = [*CONSOLE.glob("templates/*.html"), *CONSOLE.glob("*.py")]
    used = {key for path in sources for key in KEY.findall(path.read_text(encoding="utf-8"))}
    assert used, "no keys found"
    missing = sorted(k for k in used if k not in TEXTS)
    assert missing == []


def test_enum_keys_and_both_languages() -> None:
    dynamic = ([f"status.{s.value}" for s in TicketStatus] + [f"priority.{p.value}" for p in Priority]
               + [f"role.{r.value}" for r in Role] + [f"author.{a.value}" for a in AuthorKind]
               + [f"delivery.{o.value}" for o in OutboxStatus]
               + [f"view.{v}" for v in ("mine", "unassigned", "queue", "all", "done")]
               + [f"admin.{s}" for s in ("users", "queues", "canned", "routing", "intents", "channels", "audit")]
               + [f"job.{s.value}" for s in JobState] + [f"review.{s.value}" for s in SuggestionStatus]
               + [f"source.{s}" for s in ("shipped", "admin", "suggestion", "import")])
    assert [k for k in dynamic if k not in TEXTS] == []
    for key, (en, ru) in TEXTS.items():
        assert en.strip() and ru.strip(), key
    assert translator("ru")("nav.inbox") == "Входящие"
    assert translator("xx")("nav.inbox") == "Inbox"
