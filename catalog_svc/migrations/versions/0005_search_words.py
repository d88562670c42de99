"""catalog schema: the vocabulary of names, for correcting a misspelt search word

A search that finds nothing used to fall back to trigram similarity against every title:
"grden" shares trigrams with 14,000 of a million titles, and each of them was fetched and
compared (300 ms). PostgreSQL's documented alternative is a word list: correct the word
against the (small) vocabulary with pg_trgm, then search the corrected words as usual.

- ``search_words``: every lexeme of every artist name, album title and track title, as the
  search vectors fold them. C collation, so a typed prefix is a btree range.
- Triggers add the words of a new or renamed entity at once (a renamed-away word stays: it can
  only make a correction find nothing, after which the trigram fallback still runs).
- ``catalog.refresh_search_words()`` fills the table from scratch (this migration, bulk loads).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 18:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("artists", "albums", "tracks")
NAME_COLUMN = {"artists": "name", "albums": "title", "tracks": "title"}


def upgrade() -> None:
    op.execute('CREATE TABLE catalog.search_words (word text COLLATE "C" PRIMARY KEY)')
    op.execute(
        "CREATE INDEX ix_search_words_word_trgm ON catalog.search_words USING gin (word public.gin_trgm_ops)"
    )
    op.execute(
        "CREATE FUNCTION catalog.refresh_search_words() RETURNS void LANGUAGE sql AS $$ "
        "INSERT INTO catalog.search_words (word) "
        + " UNION ".join(
            f"SELECT unnest(tsvector_to_array(search_vector)) FROM catalog.{table}" for table in TABLES
        )
        + " ON CONFLICT DO NOTHING $$"
    )
    op.execute(
        "CREATE FUNCTION catalog.add_search_words() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO catalog.search_words (word) SELECT unnest(tsvector_to_array(NEW.search_vector)) "
        "ON CONFLICT DO NOTHING; RETURN NULL; END $$"
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER search_words_from_{table} AFTER INSERT OR UPDATE OF {NAME_COLUMN[table]} "
            f"ON catalog.{table} FOR EACH ROW EXECUTE FUNCTION catalog.add_search_words()"
        )
    op.execute("SELECT catalog.refresh_search_words()")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER search_words_from_{table} ON catalog.{table}")
    op.execute("DROP FUNCTION catalog.add_search_words()")
    op.execute("DROP FUNCTION catalog.refresh_search_words()")
    op.execute("DROP TABLE catalog.search_words")
