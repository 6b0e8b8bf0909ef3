"""The search indexes the database keeps in step with the tables (built by migration 0018).

PostgreSQL: GIN indexes on `to_tsvector('russian', ...)` expressions (the `russian` configuration stems Cyrillic
words with the Russian Snowball stemmer and Latin ones with the English stemmer, so one index serves both
languages), and pg_trgm GIN indexes for identifiers and partial matches.
SQLite: FTS5 external-content tables over the texts, kept in step by triggers.

Neither is in the ORM metadata (expression GIN indexes and virtual tables are not expressible there): Alembic's
autogenerate leaves them alone through `include_name` below.
"""

from __future__ import annotations

from typing import Any

TS_CONFIG = "russian"

# name -> (table, expression, index method); the expressions are what the search queries repeat verbatim, so
# the planner matches them to the index.
PG_INDEXES: dict[str, tuple[str, str, str]] = {
    "ix_messages_text_fts": ("messages", f"to_tsvector('{TS_CONFIG}'::regconfig, text)", "gin"),
    "ix_tickets_subject_fts": ("tickets", f"to_tsvector('{TS_CONFIG}'::regconfig, subject)", "gin"),
    "ix_notes_text_fts": ("notes", f"to_tsvector('{TS_CONFIG}'::regconfig, text)", "gin"),
    "ix_customers_name_trgm": ("customers", "lower(name) gin_trgm_ops", "gin"),
    "ix_customers_email_trgm": ("customers", "lower(email) gin_trgm_ops", "gin"),
    "ix_customers_phone_trgm": ("customers", "regexp_replace(phone, '[^0-9]', '', 'g') gin_trgm_ops", "gin"),
    "ix_channel_identities_external_trgm": ("channel_identities", "lower(external_id) gin_trgm_ops", "gin"),
    "ix_orders_number_trgm": ("orders", "lower(number) gin_trgm_ops", "gin"),
}

# FTS5 table -> (content table, indexed column). `unicode61` folds case and (remove_diacritics 2) accents, ё too.
SQLITE_FTS: dict[str, tuple[str, str]] = {
    "fts_messages": ("messages", "text"),
    "fts_tickets": ("tickets", "subject"),
    "fts_notes": ("notes", "text"),
}
FTS_PREFIX = "fts_"


def sqlite_fts_ddl(fts: str) -> list[str]:
    """The FTS5 table over one text column and the triggers that keep it in step, as SQL statements."""
    table, column = SQLITE_FTS[fts]
    # Names and columns are this module's constants, never input.
    add = f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column});"  # noqa: S608
    remove = f"INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});"  # noqa: S608
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({column}, content='{table}', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {remove} END",
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {column} ON {table} BEGIN {remove} {add} END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",  # noqa: S608
    ]


def sqlite_fts_triggers(fts: str) -> list[str]:
    """Only the triggers: a batch migration that copies `table` (SQLite's ALTER) drops them; recreate them after."""
    return [s for s in sqlite_fts_ddl(fts) if s.startswith("CREATE TRIGGER")]


def include_name(name: str | None, type_: str, _parent: Any) -> bool:
    """Alembic autogenerate: skip the search indexes and FTS5 tables (with their shadow tables)."""
    if name is None:
        return True
    if type_ == "table":
        return not name.startswith(FTS_PREFIX)
    if type_ == "index":
        return name not in PG_INDEXES
    return True
