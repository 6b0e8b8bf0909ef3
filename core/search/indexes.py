"""The search indexes the database keeps in step with the tables (built by migrations 0022, 0025 and 0026).

PostgreSQL: GIN indexes on stored `to_tsvector('russian', text)` columns kept by triggers (the `russian`
configuration stems Cyrillic words with the Russian Snowball stemmer and Latin ones with the English stemmer, so one
index serves both languages), and pg_trgm GIN indexes for identifiers and partial matches.
SQLite: FTS5 external-content tables over the texts, kept in step by triggers.

Neither is in the ORM metadata (the stored tsvector columns exist on PostgreSQL only, virtual tables are not
expressible there): Alembic's autogenerate leaves them alone through `include_name` below.
"""

from __future__ import annotations

from typing import Any

TS_CONFIG = "russian"

# PostgreSQL: each searched text has a stored tsvector beside it (table -> text column), outside the ORM, set by
# a BEFORE INSERT/UPDATE trigger from the text: checking one row is then a cheap look at a stored value, so the
# newest rows can be walked one by one until enough match (a common word) instead of building the word's whole GIN
# bitmap (a word in 17 % of 3,000,000 messages: 130-300 ms). Migration 0023 added them to existing data.
TSV_COLUMN = "search_tsv"
PG_TSV_TEXTS: dict[str, str] = {"messages": "text", "tickets": "subject", "notes": "text"}

# name -> (table, expression, index method); the expressions are what the search queries repeat verbatim, so
# the planner matches them to the index.
PG_TSV_INDEXES: dict[str, tuple[str, str, str]] = {
    "ix_messages_search_tsv": ("messages", TSV_COLUMN, "gin"),
    "ix_tickets_search_tsv": ("tickets", TSV_COLUMN, "gin"),
    "ix_notes_search_tsv": ("notes", TSV_COLUMN, "gin"),
}
PG_TRGM_INDEXES: dict[str, tuple[str, str, str]] = {
    "ix_customers_name_trgm": ("customers", "lower(name) gin_trgm_ops", "gin"),
    "ix_customers_email_trgm": ("customers", "lower(email) gin_trgm_ops", "gin"),
    "ix_customers_phone_trgm": ("customers", "regexp_replace(phone, '[^0-9]', '', 'g') gin_trgm_ops", "gin"),
    "ix_channel_identities_external_trgm": ("channel_identities", "lower(external_id) gin_trgm_ops", "gin"),
    "ix_orders_number_trgm": ("orders", "lower(number) gin_trgm_ops", "gin"),
}
# Equality of an identifier as typed in any case (e-mail, channel id, order number): a btree look-up. The trigram
# indexes above also answer `=`, but every address shares the trigrams of "@example.org", so they read the posting
# lists of most customers first (~100 ms on the year bench against well under 1 ms). Migration 0026.
PG_EQUALITY_INDEXES: dict[str, tuple[str, str, str]] = {
    "ix_customers_email_lower": ("customers", "lower(email)", "btree"),
    "ix_channel_identities_external_lower": ("channel_identities", "lower(external_id)", "btree"),
    "ix_orders_number_lower": ("orders", "lower(number)", "btree"),
}
PG_INDEXES = {**PG_TSV_INDEXES, **PG_TRGM_INDEXES, **PG_EQUALITY_INDEXES}

# Migration 0022's expression indexes over to_tsvector(text), replaced by those on the stored columns.
PG_EXPRESSION_INDEXES: dict[str, tuple[str, str, str]] = {
    "ix_messages_text_fts": ("messages", f"to_tsvector('{TS_CONFIG}'::regconfig, text)", "gin"),
    "ix_tickets_subject_fts": ("tickets", f"to_tsvector('{TS_CONFIG}'::regconfig, subject)", "gin"),
    "ix_notes_text_fts": ("notes", f"to_tsvector('{TS_CONFIG}'::regconfig, text)", "gin"),
}


def pg_tsv_expression(table: str, alias: str = "NEW") -> str:
    """What the stored tsvector of a row of `table` holds (the trigger's and the backfill's one spelling)."""
    return f"to_tsvector('{TS_CONFIG}'::regconfig, coalesce({alias}.{PG_TSV_TEXTS[table]}, ''))"


def pg_tsv_ddl(table: str) -> list[str]:
    """The stored tsvector column of `table` and the trigger that keeps it in step with the text, as SQL statements
    (idempotent: a migration that stopped half-way runs them again)."""
    column = PG_TSV_TEXTS[table]
    function = f"{table}_{TSV_COLUMN}"
    return [
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {TSV_COLUMN} tsvector",
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN NEW.{TSV_COLUMN} := {pg_tsv_expression(table)}; RETURN NEW; END $$",
        f"DROP TRIGGER IF EXISTS {function} ON {table}",
        f"CREATE TRIGGER {function} BEFORE INSERT OR UPDATE OF {column} ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
    ]


def pg_tsv_drop(table: str) -> list[str]:
    function = f"{table}_{TSV_COLUMN}"
    return [f"DROP TRIGGER IF EXISTS {function} ON {table}", f"DROP FUNCTION IF EXISTS {function}()",
            f"ALTER TABLE {table} DROP COLUMN IF EXISTS {TSV_COLUMN}"]


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
        return name not in PG_INDEXES and name not in PG_EXPRESSION_INDEXES
    if type_ == "column":
        return name != TSV_COLUMN
    return True
