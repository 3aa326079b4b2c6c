"""The models and the migrations describe the same schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from invoicehub.kit.db import normalize_database_url
from invoicehub.migrations import alembic_config, current_revision_is_head, upgrade_to_head
from invoicehub.models import Base
from tests.conftest import TEST_DB, fresh_postgres_database


@contextmanager
def empty_database(directory: Path) -> Iterator[str]:
    """A database of this run's kind with nothing in it, not even alembic_version."""
    if TEST_DB == "postgres":
        with fresh_postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{directory}/empty.db"


def schema_differences(database_url: str) -> list[Any]:
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                # Types and server defaults too, not only tables, columns and indexes. No
                # filter is needed for UTCDateTime/DecimalText: alembic compares a
                # TypeDecorator by its impl (DateTime(timezone=True), String(40)), which is
                # exactly what the migrations create.
                opts={"compare_type": True, "compare_server_default": True},
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def table_names(database_url: str) -> set[str]:
    engine = create_engine(normalize_database_url(database_url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_models_and_migrations_agree(database_url: str) -> None:
    assert schema_differences(database_url) == []
    assert set(Base.metadata.tables) <= table_names(database_url)


def test_the_test_database_is_at_head(database_url: str) -> None:
    assert current_revision_is_head(database_url) is True


def test_one_linear_history(database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(database_url))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1
    revisions = list(script.walk_revisions())
    assert revisions[-1].down_revision is None
    for newer, older in itertools.pairwise(revisions):
        assert newer.down_revision == older.revision


def test_an_empty_database_is_behind_until_migrated(tmp_path: Path) -> None:
    with empty_database(tmp_path) as url:
        assert current_revision_is_head(url) is False
        upgrade_to_head(url)
        assert current_revision_is_head(url) is True
        upgrade_to_head(url)  # running it again changes nothing
        assert current_revision_is_head(url) is True
        assert schema_differences(url) == []


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    with empty_database(tmp_path) as url:
        upgrade_to_head(url)
        command.downgrade(alembic_config(url), "base")
        assert table_names(url) - {"alembic_version"} == set()
        assert current_revision_is_head(url) is False
        upgrade_to_head(url)
        assert current_revision_is_head(url) is True
        assert schema_differences(url) == []


def test_unsupported_database_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        upgrade_to_head("mysql://user@127.0.0.1/x")
