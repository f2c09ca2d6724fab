"""Creates the event store's schema and tables on PostgreSQL, once, before any process
starts with CREATE_TABLE off. The DDL is the library's own: its recorder creates them."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import migrations


def create_event_store(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return  # the embedded SQLite event store creates its own tables
    from psycopg import sql

    from ledger.application import Payouts

    schema = settings.EVENT_STORE["POSTGRES_SCHEMA"]
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}")
            .format(sql.Identifier(schema))
            .as_string()
        )
    env = dict(settings.EVENT_STORE)
    env.update(
        POSTGRES_DBNAME=schema_editor.connection.settings_dict["NAME"],
        CREATE_TABLE="y",
        POSTGRES_POOL_SIZE="1",
        POSTGRES_MAX_OVERFLOW="0",
    )
    Payouts(env=env).close()


class Migration(migrations.Migration):
    # The library creates the tables on its own connection, which must see the schema.
    atomic = False

    dependencies = [("projections", "0001_initial")]

    operations = [migrations.RunPython(create_event_store, migrations.RunPython.noop)]
