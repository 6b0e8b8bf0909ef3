"""The console's texts whose keys are made from data (enums, views, tabs) exist in the catalog in both languages.

Literal keys in templates and code, both languages, plural forms: tests/core/i18n."""

from __future__ import annotations

from core.auth.models import ThrottleScope
from core.i18n import LANGUAGES, translator
from core.nlu_admin.models import JobState, SuggestionStatus
from core.outbox.models import OutboxStatus
from core.tickets.models import AuthorKind, Priority, TicketStatus
from core.users.models import Role


def test_enum_keys_in_both_languages() -> None:
    dynamic = ([f"status.{s.value}" for s in TicketStatus] + [f"priority.{p.value}" for p in Priority]
               + [f"role.{r.value}" for r in Role] + [f"author.{a.value}" for a in AuthorKind]
               + [f"delivery.{o.value}" for o in OutboxStatus]
               + [f"view.{v}" for v in ("mine", "unassigned", "queue", "all", "done")]
               + [f"admin.{s}" for s in ("users", "queues", "canned", "routing", "intents", "sla", "channels",
                                                  "audit")]
               + [f"job.{s.value}" for s in JobState] + [f"review.{s.value}" for s in SuggestionStatus]
               + [f"source.{s}" for s in ("shipped", "admin", "suggestion", "import")]
               + [f"login.throttled.{s.value}" for s in ThrottleScope] + [f"lang.{code}" for code in LANGUAGES])
    for language in LANGUAGES:
        _ = translator(language)
        assert [k for k in dynamic if _.get(k) is None] == [], language
    assert translator("ru")("status.pending") == "ожидает клиента"


def test_templates_word_counts_with_the_readers_plural_forms() -> None:
    from api.console.render import TEMPLATES_DIR, env

    assert "caption=tickets" in (TEMPLATES_DIR / "board.html").read_text(encoding="utf-8")  # the board's chart
    template = env.from_string('{% macro tickets(n) %}{{ ngettext("inbox.total", n) }}{% endmacro %}'
                               '{{ columns([("01.05", 21), ("02.05", 5), ("03.05", 0)], title=_("board.per_day"), '
                               'caption=tickets) }}')
    ru = translator("ru")
    html = template.render(gettext=ru, ngettext=ru.ngettext)
    assert "Новые обращения по дням (14 дней)" in html  # `_` is the i18n extension's, resolving `gettext`
    assert "01.05: 21 обращение<" in html and "02.05: 5 обращений<" in html and "03.05: 0 обращений<" in html
