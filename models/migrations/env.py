"""Alembic environment: the URL comes from the ``sqlalchemy.url`` option when a caller
sets it (tests, scripts) and from DATABASE_URL otherwise."""
from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import event, pool

from models import Base
from models.db import make_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from settings import load_settings  # noqa: PLC0415 - only when run from the CLI

    return load_settings().database_url


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Render our column types as plain SQLAlchemy types so migrations never import models."""
    from models.base import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def include_name(name: str | None, type_: str, _parents: dict[str, Any]) -> bool:
    """Autogenerate leaves out events' monthly partitions (and their indexes): the
    models declare the parent table only."""
    from models.event import is_event_partition

    return not (type_ == "table" and is_event_partition(name))


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _foreign_keys_off(dbapi_conn: Any, _record: Any) -> None:
    # After make_engine's own listener turns them on. SQLite ignores the pragma
    # inside a transaction, so it is set as the connection opens.
    dbapi_conn.execute("PRAGMA foreign_keys=OFF")


def run_migrations_online() -> None:
    engine = make_engine(_url(), poolclass=pool.NullPool)
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        # SQLite rebuilds a table to alter it (batch mode): with foreign keys on,
        # dropping the old table deletes or nulls every row referring to it
        # (ON DELETE CASCADE / SET NULL), so SQLite's procedure for altering a
        # table turns them off and checks them once the schema is in place.
        event.listen(engine, "connect", _foreign_keys_off)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            render_item=render_item,
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migrations left rows whose parent is missing: {broken[:10]}")
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
